DROP INDEX messages_user_state_received;
DROP TABLE dkim_keys;
DROP TABLE release_requests;
DROP TABLE classifier_feedback;

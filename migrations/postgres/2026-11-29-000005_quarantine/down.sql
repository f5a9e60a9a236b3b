DROP INDEX messages_user_state_received;
DROP TABLE release_requests;
DROP TABLE classifier_feedback;

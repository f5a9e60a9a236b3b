DROP INDEX messages_platform_state_received;
DROP TABLE dkim_keys;

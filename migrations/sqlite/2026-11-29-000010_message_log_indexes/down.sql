DROP INDEX message_log_received;
DROP INDEX message_log_outbound_sender;

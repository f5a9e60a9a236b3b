DROP TABLE traffic_counters;
DROP TABLE messages;
DROP TABLE message_log;
DROP TABLE jobs;

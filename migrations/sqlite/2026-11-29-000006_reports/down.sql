DROP TABLE used_link_tokens;
DROP TABLE report_runs;
DROP TABLE report_definitions;

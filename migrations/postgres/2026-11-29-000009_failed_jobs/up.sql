-- Jobs that failed for good (a payload this version cannot read, or too many attempts) stay
-- in the table for operators, with `failed_at` and `last_error`, and are no longer claimed.
ALTER TABLE jobs ADD COLUMN failed_at TIMESTAMP;

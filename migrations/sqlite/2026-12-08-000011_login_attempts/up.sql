-- Failed logins per account, shared by every API process (the count used to live in each
-- process, so N processes allowed N times the guesses). One row per login name whose window
-- is open; rows of closed windows are deleted as logins come in.
CREATE TABLE login_attempts (
    account TEXT PRIMARY KEY NOT NULL,
    attempts INTEGER NOT NULL,
    window_opened_at TIMESTAMP NOT NULL
);
CREATE INDEX login_attempts_window ON login_attempts (window_opened_at);

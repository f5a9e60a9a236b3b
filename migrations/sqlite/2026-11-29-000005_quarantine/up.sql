-- Quarantine and backup webmail: classifier feedback from releases and spam reports,
-- release requests of end users (phishing, virus) awaiting a tenant admin, and the index of
-- a user's quarantine list.

CREATE TABLE classifier_feedback (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- The recipient copy the feedback is about (it may be purged later: no foreign key).
    message_id TEXT NOT NULL,
    log_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- 'ham' (released) or 'spam' (reported).
    kind TEXT NOT NULL,
    -- What the engine had decided.
    category TEXT NOT NULL,
    score DOUBLE NOT NULL,
    mail_from TEXT NOT NULL,
    subject TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    -- Who gave it: `user:<id>`, `operator:<id>`, `api_key:<id>`.
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (message_id, kind)
);
CREATE INDEX classifier_feedback_tenant ON classifier_feedback (tenant_id, created_at);

CREATE TABLE release_requests (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id TEXT NOT NULL UNIQUE REFERENCES messages(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- 'pending', 'approved' or 'denied'.
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    decided_by TEXT,
    created_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP
);
CREATE INDEX release_requests_tenant ON release_requests (tenant_id, state, id);
CREATE INDEX release_requests_user ON release_requests (user_id);

-- A user's quarantine (or retention store) newest first, without touching other users' rows.
CREATE INDEX messages_user_state_received ON messages (user_id, state, received_at DESC, id DESC);

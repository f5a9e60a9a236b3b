-- SMTP ingest: the job queue, the message log, per-recipient messages (quarantine and
-- retention store) and hourly traffic counters.

-- A small transactional job queue (outbox). `id` is the idempotency key: a job that
-- would be enqueued twice has the same id. A job row is deleted in the same transaction
-- that records its effects.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    -- The tenant the job works for; NULL for platform-wide jobs (purges).
    tenant_id TEXT,
    payload TEXT NOT NULL,
    -- The message blob the job still needs (kept from purges while set).
    blob_key TEXT,
    run_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    locked_by TEXT,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX jobs_run_at ON jobs (run_at);
CREATE INDEX jobs_locked_by ON jobs (locked_by);
CREATE INDEX jobs_blob_key ON jobs (blob_key);

-- One row per inbound message and tenant, from SMTP acceptance (or refusal) on.
CREATE TABLE message_log (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    mail_from TEXT NOT NULL,
    -- JSON array of envelope recipients.
    rcpt_to TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    helo TEXT NOT NULL,
    tls BOOLEAN NOT NULL,
    from_header TEXT NOT NULL,
    subject TEXT NOT NULL,
    message_id_header TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    category TEXT NOT NULL,
    -- JSON: the engine's verdict (symbols, per-recipient decisions).
    verdict TEXT NOT NULL,
    -- JSON array: per-recipient action as carried out.
    actions TEXT NOT NULL,
    -- rejected | accepted | queued | delivered | deferred | bounced | quarantined | done
    state TEXT NOT NULL,
    delivery_attempts INTEGER NOT NULL DEFAULT 0,
    last_response TEXT,
    blob_key TEXT,
    received_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX message_log_tenant_received ON message_log (tenant_id, received_at DESC, id DESC);

-- One row per inbound message and recipient mailbox: the quarantine (state quarantined)
-- and the retention store of delivered mail (state queued/deferred/delivered/bounced,
-- kept until expires_at).
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    log_id TEXT NOT NULL REFERENCES message_log(id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    from_header TEXT NOT NULL,
    subject TEXT NOT NULL,
    message_id_header TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    category TEXT NOT NULL,
    action TEXT NOT NULL,
    verdict TEXT NOT NULL,
    state TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    last_response TEXT,
    received_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX messages_tenant_user_received ON messages (tenant_id, user_id, received_at DESC, id DESC);
CREATE INDEX messages_tenant_received ON messages (tenant_id, received_at DESC, id DESC);
CREATE INDEX messages_state_received ON messages (tenant_id, state, received_at DESC, id DESC);
CREATE INDEX messages_expires_at ON messages (expires_at);
CREATE INDEX messages_log_id ON messages (log_id);
CREATE INDEX messages_blob_key ON messages (blob_key);
CREATE INDEX messages_domain_id ON messages (domain_id);
CREATE INDEX messages_user_id ON messages (user_id);

-- Messages per domain and hour, by outcome.
CREATE TABLE traffic_counters (
    domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    hour TIMESTAMP NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    clean BIGINT NOT NULL DEFAULT 0,
    newsletter BIGINT NOT NULL DEFAULT 0,
    spam BIGINT NOT NULL DEFAULT 0,
    phishing BIGINT NOT NULL DEFAULT 0,
    virus BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (domain_id, hour)
);
CREATE INDEX traffic_counters_tenant_hour ON traffic_counters (tenant_id, hour);

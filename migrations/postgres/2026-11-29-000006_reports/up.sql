-- Quarantine reports and domain/tenant reports: definitions, one row per sent slot
-- (the exactly-once key), and the used one-click action tokens (no replay).

-- A report a tenant admin defined for the tenant (domain_id NULL) or one domain.
CREATE TABLE report_definitions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    domain_id TEXT REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- quarantine | statistics
    kind TEXT NOT NULL,
    -- daily | weekly | monthly
    frequency TEXT NOT NULL,
    -- JSON array of recipient addresses (may be outside the tenant's domains).
    recipients TEXT NOT NULL,
    -- en | fr | de | it
    language TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX report_definitions_tenant ON report_definitions (tenant_id, id);
CREATE INDEX report_definitions_domain ON report_definitions (domain_id);

-- One row per report slot that ran, for a user (quarantine report) or a definition.
-- The UNIQUE keys make a slot run once however many workers try; the row is inserted in
-- the transaction that enqueues the email. items = 0: nothing new, no email sent.
CREATE TABLE report_runs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    definition_id TEXT REFERENCES report_definitions(id) ON DELETE CASCADE,
    slot TIMESTAMP NOT NULL,
    -- The report covers what arrived up to here (the next one starts here).
    covered_until TIMESTAMP NOT NULL,
    items INTEGER NOT NULL,
    log_id TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX report_runs_user_slot ON report_runs (user_id, slot);
CREATE UNIQUE INDEX report_runs_definition_slot ON report_runs (definition_id, slot);
CREATE INDEX report_runs_tenant ON report_runs (tenant_id);

-- The ids of one-click action tokens already carried out.
CREATE TABLE used_link_tokens (
    jti TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    used_at TIMESTAMP NOT NULL
);
CREATE INDEX used_link_tokens_tenant ON used_link_tokens (tenant_id);
CREATE INDEX used_link_tokens_user ON used_link_tokens (user_id);

-- Per-tenant classifier learning: each tenant's corrections to the shared model
-- (cleanmail_core::TenantModel), learned from its classifier feedback by `learn_feedback` jobs.
CREATE TABLE tenant_models (
    tenant_id TEXT NOT NULL PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    -- TenantModel::to_bytes.
    model BLOB NOT NULL,
    -- Feedback learned so far; also the optimistic lock of concurrent learners.
    learned BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Policies: full filtering policies owned by the platform (the built-in recommended ones),
-- a reseller or a tenant; which one each tenant uses; and partial overrides per domain and
-- per user. Policy settings and overrides are JSON text of cleanmail_core's policy types.

CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    -- 'platform', 'reseller' or 'tenant'.
    owner_kind TEXT NOT NULL,
    reseller_id TEXT REFERENCES resellers(id) ON DELETE CASCADE,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    -- The preset key of a built-in policy (read-only), NULL otherwise.
    builtin TEXT UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (
        (owner_kind = 'platform' AND reseller_id IS NULL AND tenant_id IS NULL)
        OR (owner_kind = 'reseller' AND reseller_id IS NOT NULL AND tenant_id IS NULL)
        OR (owner_kind = 'tenant' AND reseller_id IS NULL AND tenant_id IS NOT NULL)
    )
);
CREATE INDEX policies_reseller_id ON policies (reseller_id, id);
CREATE INDEX policies_tenant_id ON policies (tenant_id, id);

-- The full policy of each tenant (every tenant has exactly one).
CREATE TABLE tenant_policies (
    tenant_id TEXT NOT NULL PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    policy_id TEXT NOT NULL REFERENCES policies(id),
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX tenant_policies_policy_id ON tenant_policies (policy_id);

CREATE TABLE domain_policy_overrides (
    domain_id TEXT PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    overrides TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX domain_policy_overrides_tenant_id ON domain_policy_overrides (tenant_id, domain_id);

CREATE TABLE user_policy_overrides (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    overrides TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX user_policy_overrides_tenant_id ON user_policy_overrides (tenant_id, user_id);

-- The built-in recommended policies (their settings are refreshed from the code on every
-- migrate run), and every existing tenant on the standard one.
INSERT INTO policies (id, owner_kind, reseller_id, tenant_id, builtin, name, description, settings, created_at, updated_at)
VALUES
    ('00000000-0000-7000-8000-000000000001', 'platform', NULL, NULL, 'standard_with_quarantine_report',
     'Standard policy with quarantine reporting', '',
     '{"thresholds":{"tag":5.0,"quarantine":5.0,"reject":null},"actions":{"clean":"deliver","newsletter":"tag","spam":"quarantine","phishing":"quarantine","virus":"quarantine"},"newsletter_tag":"[PUB] ","spam_tag":"[SPAM] ","report":{"schedule":{"every":"daily","at":"09:00"},"timezone":"Europe/Zurich"},"quarantine_expiry":30,"backup_webmail":{"mode":"keep","days":30},"lists":{"allow":[],"block":[]}}',
     CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    ('00000000-0000-7000-8000-000000000002', 'platform', NULL, NULL, 'without_quarantine_report',
     'Policy without quarantine report', '',
     '{"thresholds":{"tag":5.0,"quarantine":5.0,"reject":null},"actions":{"clean":"deliver","newsletter":"tag","spam":"quarantine","phishing":"quarantine","virus":"quarantine"},"newsletter_tag":"[PUB] ","spam_tag":"[SPAM] ","report":{"schedule":{"every":"never"},"timezone":"Europe/Zurich"},"quarantine_expiry":30,"backup_webmail":{"mode":"keep","days":30},"lists":{"allow":[],"block":[]}}',
     CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);

INSERT INTO tenant_policies (tenant_id, policy_id, updated_at)
SELECT id, '00000000-0000-7000-8000-000000000001', CURRENT_TIMESTAMP FROM tenants;

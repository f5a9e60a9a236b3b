-- DKIM keys for outbound mail, one or more per domain (rotation: publish the new key's
-- record, then activate it). The private key is sealed under the platform secret
-- (cleanmail_core::dkim::KeySealer); the public key is the record's `p=` value.
CREATE TABLE dkim_keys (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    -- The key outbound mail of the domain is signed with (at most one per domain).
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (domain_id, selector)
);
CREATE INDEX dkim_keys_tenant ON dkim_keys (tenant_id);

-- The platform operator's quarantine and webmail lists (no tenant filter), newest first.
CREATE INDEX messages_platform_state_received ON messages (state, received_at DESC, id DESC);

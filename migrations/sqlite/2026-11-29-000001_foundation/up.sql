-- Foundation: the reseller hierarchy, access and the platform-wide address registry.
-- Ids are opaque text (UUID v7). Timestamps are UTC.

CREATE TABLE resellers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    portal_url TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    reseller_id TEXT NOT NULL REFERENCES resellers(id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    timezone TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX tenants_reseller_id ON tenants (reseller_id, id);

CREATE TABLE domains (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE RESTRICT,
    name TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    destination TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX domains_tenant_id ON domains (tenant_id, id);

-- Every address of the platform, user or alias, exactly once.
CREATE TABLE address_claims (
    address TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE RESTRICT,
    kind TEXT NOT NULL
);
CREATE INDEX address_claims_tenant_id ON address_claims (tenant_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE RESTRICT,
    domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
    address TEXT NOT NULL UNIQUE REFERENCES address_claims(address),
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL,
    password_hash TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX users_tenant_id ON users (tenant_id, id);
CREATE INDEX users_domain_id ON users (domain_id, id);

CREATE TABLE aliases (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE RESTRICT,
    domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    address TEXT NOT NULL UNIQUE REFERENCES address_claims(address),
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX aliases_tenant_id ON aliases (tenant_id, id);
CREATE INDEX aliases_user_id ON aliases (user_id, id);
CREATE INDEX aliases_domain_id ON aliases (domain_id, id);

-- Platform and reseller staff who log in with a password.
CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    reseller_id TEXT REFERENCES resellers(id) ON DELETE CASCADE,
    password_hash TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    reseller_id TEXT REFERENCES resellers(id) ON DELETE CASCADE,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_keys_reseller_id ON api_keys (reseller_id);
CREATE INDEX api_keys_tenant_id ON api_keys (tenant_id);

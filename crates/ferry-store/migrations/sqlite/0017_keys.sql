-- Identity (issue #14): tenants, and API keys of a tenant with a role. A key is shown once;
-- only a keyed hash of its secret is kept, found by its visible prefix. Worker tokens are
-- keys with the `worker` role, narrowed to kind patterns (`kinds`, NULL: every kind).
CREATE TABLE ferry_tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE ferry_api_keys (
    prefix TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    kinds TEXT,
    name TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX ferry_api_keys_tenant ON ferry_api_keys (tenant_id, created_at);

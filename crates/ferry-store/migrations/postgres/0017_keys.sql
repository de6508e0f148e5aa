-- Identity (issue #14): tenants, and API keys of a tenant with a role. A key is shown once;
-- only a keyed hash of its secret is kept, found by its visible prefix. Worker tokens are
-- keys with the `worker` role, narrowed to kind patterns (`kinds`, NULL: every kind).
CREATE TABLE ferry.tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE ferry.api_keys (
    prefix TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    kinds JSONB,
    name TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON ferry.api_keys (tenant_id, created_at);

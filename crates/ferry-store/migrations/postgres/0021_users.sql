-- Users (issue #14): people who log in (the dashboard), by a login name, with an argon2id
-- hash of their password (a PHC string: algorithm, parameters, salt and hash), a role in
-- each tenant they belong to, and login sessions found by a keyed hash of the cookie's
-- token (the token itself is never stored).
CREATE TABLE ferry.users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);

CREATE TABLE ferry.user_roles (
    user_name TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_name, tenant_id)
);
CREATE INDEX user_roles_tenant ON ferry.user_roles (tenant_id);

CREATE TABLE ferry.user_sessions (
    token_hash BYTEA PRIMARY KEY,
    user_name TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX user_sessions_user ON ferry.user_sessions (user_name);
CREATE INDEX user_sessions_expiry ON ferry.user_sessions (expires_at);

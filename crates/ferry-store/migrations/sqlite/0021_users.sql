-- Users (issue #14): people who log in (the dashboard), by a login name, with an argon2id
-- hash of their password (a PHC string: algorithm, parameters, salt and hash), a role in
-- each tenant they belong to, and login sessions found by a keyed hash of the cookie's
-- token (the token itself is never stored).
CREATE TABLE ferry_users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

CREATE TABLE ferry_user_roles (
    user_name TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_name, tenant_id)
);
CREATE INDEX ferry_user_roles_tenant ON ferry_user_roles (tenant_id);

CREATE TABLE ferry_user_sessions (
    token_hash BLOB PRIMARY KEY,
    user_name TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX ferry_user_sessions_user ON ferry_user_sessions (user_name);
CREATE INDEX ferry_user_sessions_expiry ON ferry_user_sessions (expires_at);

-- The audit log (issue #14): who (a key's prefix, a user, the CLI) did what to which
-- resource of a tenant, written in the transaction that makes the change, so an entry
-- exists exactly when the change does. Never holds a secret.
CREATE TABLE ferry_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX ferry_audit_tenant ON ferry_audit (tenant_id, id);

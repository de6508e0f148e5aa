-- The audit log (issue #14): who (a key's prefix, a user, the CLI) did what to which
-- resource of a tenant, written in the transaction that makes the change, so an entry
-- exists exactly when the change does. Never holds a secret.
CREATE TABLE ferry.audit (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    at bigint NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail jsonb
);
CREATE INDEX audit_tenant ON ferry.audit (tenant_id, id);

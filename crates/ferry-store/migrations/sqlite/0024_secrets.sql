-- The secrets vault (issue #15): a tenant's named secrets, sealed (AES-256-GCM) by the
-- server under their tenant and name before they get here, each with the domains it may be
-- sent to (JSON). Never answered back to a client; a worker gets one only under a live
-- lease of a job whose payload names it.
CREATE TABLE ferry_secrets (
    tenant_id   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    sealed      BLOB    NOT NULL,
    domains     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

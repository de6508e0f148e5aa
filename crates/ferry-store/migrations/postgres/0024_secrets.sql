-- The secrets vault (issue #15): a tenant's named secrets, sealed (AES-256-GCM) by the
-- server under their tenant and name before they get here, each with the domains it may be
-- sent to (JSON). Never answered back to a client; a worker gets one only under a live
-- lease of a job whose payload names it.
CREATE TABLE ferry.secrets (
    tenant_id   text   NOT NULL,
    name        text   NOT NULL,
    sealed      bytea  NOT NULL,
    domains     jsonb  NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

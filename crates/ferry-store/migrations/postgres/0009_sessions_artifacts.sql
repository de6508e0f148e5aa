-- Saved browser sessions: sealed (AES-256-GCM) by the server before they get here, so the
-- database never holds a cookie in plain text.
CREATE TABLE ferry.sessions (
    tenant_id     text   NOT NULL,
    name          text   NOT NULL,
    sealed        bytea  NOT NULL,
    updated_at    bigint NOT NULL,
    saved_by_job  uuid,
    PRIMARY KEY (tenant_id, name)
);

-- What a job left behind (screenshots, HTML, network logs); the bytes live in the
-- artifact store, this is the index.
CREATE TABLE ferry.artifacts (
    job_id        uuid    NOT NULL,
    name          text    NOT NULL,
    tenant_id     text    NOT NULL,
    content_type  text    NOT NULL,
    size_bytes    bigint  NOT NULL,
    attempt       integer NOT NULL,
    created_at    bigint  NOT NULL,
    PRIMARY KEY (job_id, name)
);

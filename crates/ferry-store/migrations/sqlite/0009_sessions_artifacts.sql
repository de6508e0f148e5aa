-- Saved browser sessions: sealed (AES-256-GCM) by the server before they get here, so the
-- database never holds a cookie in plain text.
CREATE TABLE ferry_sessions (
    tenant_id     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    sealed        BLOB    NOT NULL,
    updated_at    INTEGER NOT NULL,
    saved_by_job  TEXT,
    PRIMARY KEY (tenant_id, name)
);

-- What a job left behind (screenshots, HTML, network logs); the bytes live in the
-- artifact store (a directory under the data dir), this is the index.
CREATE TABLE ferry_artifacts (
    job_id        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    tenant_id     TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size_bytes    INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);

-- A dedupe key can also cover finished jobs for a while (`dedupe_ttl_ms`): find the newest
-- job with a key, whatever its state.
CREATE INDEX ferry_jobs_dedupe_any ON ferry_jobs (tenant_id, dedupe_key, finished_at)
    WHERE dedupe_key IS NOT NULL;

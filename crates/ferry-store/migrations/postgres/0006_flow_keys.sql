-- Flow-control keys. A job may carry a concurrency key (at most `concurrency_limit` jobs
-- with the key run at once) and a rate key (starts spaced by `rate_interval_ms` and/or at
-- most `rate_max` per `rate_per_ms`). Claims that may admit keyed jobs take a transaction
-- advisory lock, so admissions on every instance happen one after another and each
-- sees the ones before it.
ALTER TABLE ferry.jobs
    ADD COLUMN concurrency_key text,
    ADD COLUMN concurrency_limit integer CHECK (concurrency_limit >= 1),
    ADD COLUMN rate_key text,
    ADD COLUMN rate_interval_ms bigint CHECK (rate_interval_ms >= 1),
    ADD COLUMN rate_max integer CHECK (rate_max >= 1),
    ADD COLUMN rate_per_ms bigint CHECK (rate_per_ms >= 1);

-- Claimable keyed jobs: whether a claim must take the admitting path at all.
CREATE INDEX jobs_keyed_ready ON ferry.jobs (tenant_id, priority DESC, run_at, id)
    WHERE status IN ('pending', 'scheduled')
      AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL);
-- Running jobs per concurrency key: what a key has in use.
CREATE INDEX jobs_running_keys ON ferry.jobs (tenant_id, concurrency_key, concurrency_limit)
    WHERE status = 'running' AND concurrency_key IS NOT NULL;

-- Every start of a rate-keyed job (the server's own record). Pruned after a day, the
-- longest window.
CREATE TABLE ferry.rate_starts (
    seq        bigserial PRIMARY KEY,
    tenant_id  text   NOT NULL,
    key        text   NOT NULL,
    at         bigint NOT NULL,
    job_id     uuid   NOT NULL
);
CREATE INDEX rate_starts_key ON ferry.rate_starts (tenant_id, key, at);
CREATE INDEX rate_starts_at ON ferry.rate_starts (at);

CREATE OR REPLACE FUNCTION ferry.record_rate_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ferry.rate_starts (tenant_id, key, at, job_id)
        VALUES (NEW.tenant_id, NEW.rate_key, NEW.started_at, NEW.id);
    RETURN NULL;
END
$$;

-- Recorded in the statement that starts the job, so no start goes unrecorded.
CREATE TRIGGER jobs_rate_start
    AFTER UPDATE OF status ON ferry.jobs
    FOR EACH ROW WHEN (NEW.status = 'running' AND NEW.rate_key IS NOT NULL)
    EXECUTE FUNCTION ferry.record_rate_start();

-- A job leaving `running` frees a slot of its key: wake long-polls on every instance.
CREATE TRIGGER jobs_notify_key_freed
    AFTER UPDATE OF status ON ferry.jobs
    FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status <> 'running'
                       AND OLD.concurrency_key IS NOT NULL)
    EXECUTE FUNCTION ferry.notify_work();

-- A key a worker pushed back on (a 429 with Retry-After): nothing with it starts before
-- `blocked_until`.
CREATE TABLE ferry.rate_keys (
    tenant_id      text   NOT NULL,
    key            text   NOT NULL,
    blocked_until  bigint NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- ferry.enqueue learns `concurrency` ({key, limit}) and `rate_limit` ({key, interval_ms,
-- max, per_ms}). The server's configured key limits do not reach into the database, so
-- here `concurrency.limit` is required.
CREATE OR REPLACE FUNCTION ferry.enqueue(kind text, payload jsonb, opts jsonb DEFAULT '{}')
RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    new_id    uuid   := ferry.uuid_v7();
    now_ms    bigint := ferry.now_ms();
    due       bigint := now_ms;
    unknown   text;
    existing  uuid;
    c         jsonb;
    r         jsonb;
BEGIN
    IF kind IS NULL OR kind !~ '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$' OR length(kind) > 128 THEN
        RAISE EXCEPTION 'ferry.enqueue: % is not a valid kind (dot-separated segments of letters, digits, _ or -)', kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    opts := coalesce(opts, '{}');
    SELECT string_agg(k, ', ') INTO unknown FROM jsonb_object_keys(opts) AS k
        WHERE k NOT IN ('labels', 'priority', 'run_at', 'delay_ms', 'max_attempts', 'timeout_ms',
                        'backoff', 'dedupe_key', 'concurrency', 'rate_limit');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'ferry.enqueue: unknown option(s) %', unknown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF opts ? 'run_at' AND opts ? 'delay_ms' THEN
        RAISE EXCEPTION 'ferry.enqueue: give run_at or delay_ms, not both' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    c := opts->'concurrency';
    IF c IS NOT NULL AND (coalesce(length(c->>'key'), 0) NOT BETWEEN 1 AND 255
                          OR coalesce((c->>'limit')::integer, 0) NOT BETWEEN 1 AND 10000) THEN
        RAISE EXCEPTION 'ferry.enqueue: concurrency needs a key (1-255 bytes) and a limit (1-10000)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    r := opts->'rate_limit';
    IF r IS NOT NULL AND (coalesce(length(r->>'key'), 0) NOT BETWEEN 1 AND 255
                          OR ((r ? 'max') <> (r ? 'per_ms'))
                          OR NOT (r ? 'interval_ms' OR r ? 'max')
                          OR coalesce((r->>'interval_ms')::bigint, 1) NOT BETWEEN 1 AND 86400000
                          OR coalesce((r->>'per_ms')::bigint, 1) NOT BETWEEN 1 AND 86400000
                          OR coalesce((r->>'max')::integer, 1) NOT BETWEEN 1 AND 100000) THEN
        RAISE EXCEPTION 'ferry.enqueue: rate_limit needs a key (1-255 bytes) and interval_ms, or max with per_ms (windows up to a day)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF opts ? 'run_at' THEN
        due := greatest(now_ms, floor(extract(epoch FROM (opts->>'run_at')::timestamptz) * 1000)::bigint);
    ELSIF opts ? 'delay_ms' THEN
        due := now_ms + (opts->>'delay_ms')::bigint;
    END IF;
    INSERT INTO ferry.jobs (id, tenant_id, kind, status, payload, labels, priority, run_at,
                            max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms,
                            created_at, updated_at, dedupe_key,
                            concurrency_key, concurrency_limit,
                            rate_key, rate_interval_ms, rate_max, rate_per_ms)
    VALUES (new_id, 'default', kind,
            CASE WHEN due > now_ms THEN 'scheduled' ELSE 'pending' END,
            coalesce(payload, '{}'), coalesce(opts->'labels', '{}'),
            coalesce((opts->>'priority')::integer, 0), due,
            coalesce((opts->>'max_attempts')::integer, 3),
            coalesce((opts->>'timeout_ms')::bigint, 1800000),
            coalesce((opts->'backoff'->>'base_ms')::bigint, 1000),
            coalesce((opts->'backoff'->>'max_ms')::bigint, 600000),
            now_ms, now_ms, opts->>'dedupe_key',
            c->>'key', (c->>'limit')::integer,
            r->>'key', (r->>'interval_ms')::bigint, (r->>'max')::integer, (r->>'per_ms')::bigint)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        -- An unfinished job with this dedupe key exists: answer its id.
        SELECT id INTO existing FROM ferry.jobs
            WHERE tenant_id = 'default' AND dedupe_key = opts->>'dedupe_key'
              AND status IN ('scheduled', 'pending', 'running');
        RETURN existing;
    END IF;
    RETURN new_id;
END
$$;

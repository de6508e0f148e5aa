-- Ferry's job tables on PostgreSQL, in the `ferry` schema. Times are unix milliseconds
-- (bigint), as on SQLite, so both backends share one model. The status CHECK mirrors
-- ferry_core::JobState and docs/job-lifecycle.md.

CREATE SCHEMA IF NOT EXISTS ferry;

-- UUIDv7 (time-ordered) from a random v4: the first 48 bits become the unix time in ms and
-- the version nibble 0100 becomes 0111.
CREATE OR REPLACE FUNCTION ferry.uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

CREATE OR REPLACE FUNCTION ferry.now_ms() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;

CREATE TABLE ferry.jobs (
    id                uuid    PRIMARY KEY,
    tenant_id         text    NOT NULL,
    kind              text    NOT NULL,
    status            text    NOT NULL
        CHECK (status IN ('scheduled', 'pending', 'running', 'completed', 'failed', 'cancelled')),
    payload           jsonb   NOT NULL,
    labels            jsonb   NOT NULL DEFAULT '{}',
    priority          integer NOT NULL DEFAULT 0,
    run_at            bigint  NOT NULL,
    attempt           integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts      integer NOT NULL CHECK (max_attempts >= 1),
    timeout_ms        bigint  NOT NULL CHECK (timeout_ms >= 1),
    backoff_base_ms   bigint  NOT NULL CHECK (backoff_base_ms >= 1),
    backoff_max_ms    bigint  NOT NULL CHECK (backoff_max_ms >= backoff_base_ms),
    -- The lease of the current (or last) attempt; kept after the attempt ends so a
    -- repeated report with the same token gets the same answer.
    lease_token       text,
    lease_ms          bigint,
    lease_expires_at  bigint,
    deadline_at       bigint,
    worker_id         text,
    cancel_requested  boolean NOT NULL DEFAULT false,
    progress          jsonb,
    result            jsonb,
    error             jsonb,
    created_at        bigint  NOT NULL,
    updated_at        bigint  NOT NULL,
    started_at        bigint,
    finished_at       bigint,
    CHECK (status <> 'running'
        OR (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL AND deadline_at IS NOT NULL)),
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CHECK (status = 'completed' OR result IS NULL)
);

-- The hot path: claimable work only, in claim order. Finished jobs are not in it, so a
-- long history does not slow claims.
CREATE INDEX jobs_ready ON ferry.jobs (tenant_id, priority DESC, run_at, id)
    WHERE status IN ('pending', 'scheduled');
-- Running rows, for the rescuer and the timeout enforcer (a small set).
CREATE INDEX jobs_running ON ferry.jobs (id) WHERE status = 'running';
-- Lists by status, newest first.
CREATE INDEX jobs_status ON ferry.jobs (tenant_id, status, id);
-- Lists by kind.
CREATE INDEX jobs_kind ON ferry.jobs (tenant_id, kind, id);
-- The retention cleaner.
CREATE INDEX jobs_finished ON ferry.jobs (finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
-- Label filters (`labels @> '{"store_id": "42"}'`).
CREATE INDEX jobs_labels ON ferry.jobs USING gin (labels jsonb_path_ops);

-- Partial results; (job_id, lease_token, idx) stores a resent item once.
CREATE TABLE ferry.job_items (
    seq          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       uuid    NOT NULL REFERENCES ferry.jobs (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    lease_token  text    NOT NULL,
    idx          bigint  NOT NULL CHECK (idx >= 0),
    data         jsonb   NOT NULL,
    created_at   bigint  NOT NULL,
    UNIQUE (job_id, lease_token, idx)
);
CREATE INDEX job_items_job ON ferry.job_items (job_id, seq);

-- Wake long-polling workers on every instance when work appears. NOTIFY is delivered at
-- commit, so a job enqueued in an app's transaction wakes nobody until it commits, and
-- nobody if it rolls back. Identical notifications in one transaction are folded into one.
CREATE OR REPLACE FUNCTION ferry.notify_work() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ferry_work', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_work
    AFTER INSERT OR UPDATE OF status, run_at ON ferry.jobs
    FOR EACH ROW WHEN (NEW.status IN ('pending', 'scheduled'))
    EXECUTE FUNCTION ferry.notify_work();

-- Transactional enqueue from an application's own transaction:
--   BEGIN; INSERT INTO orders …; SELECT ferry.enqueue('http.request', '{"url": "…"}'); COMMIT;
-- `opts` takes the options of POST /v1/jobs: labels, priority, run_at (RFC 3339) or
-- delay_ms, max_attempts, timeout_ms, backoff {base_ms, max_ms}. Defaults match the
-- server's built-in defaults (3 attempts, 30 min timeout, 1 s – 10 min backoff).
CREATE OR REPLACE FUNCTION ferry.enqueue(kind text, payload jsonb, opts jsonb DEFAULT '{}')
RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    new_id    uuid   := ferry.uuid_v7();
    now_ms    bigint := ferry.now_ms();
    due       bigint := now_ms;
    unknown   text;
BEGIN
    IF kind IS NULL OR kind !~ '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$' OR length(kind) > 128 THEN
        RAISE EXCEPTION 'ferry.enqueue: % is not a valid kind (dot-separated segments of letters, digits, _ or -)', kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    opts := coalesce(opts, '{}');
    SELECT string_agg(k, ', ') INTO unknown FROM jsonb_object_keys(opts) AS k
        WHERE k NOT IN ('labels', 'priority', 'run_at', 'delay_ms', 'max_attempts', 'timeout_ms', 'backoff');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'ferry.enqueue: unknown option(s) %', unknown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF opts ? 'run_at' AND opts ? 'delay_ms' THEN
        RAISE EXCEPTION 'ferry.enqueue: give run_at or delay_ms, not both' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF opts ? 'run_at' THEN
        due := greatest(now_ms, floor(extract(epoch FROM (opts->>'run_at')::timestamptz) * 1000)::bigint);
    ELSIF opts ? 'delay_ms' THEN
        due := now_ms + (opts->>'delay_ms')::bigint;
    END IF;
    INSERT INTO ferry.jobs (id, tenant_id, kind, status, payload, labels, priority, run_at,
                            max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms,
                            created_at, updated_at)
    VALUES (new_id, 'default', kind,
            CASE WHEN due > now_ms THEN 'scheduled' ELSE 'pending' END,
            coalesce(payload, '{}'), coalesce(opts->'labels', '{}'),
            coalesce((opts->>'priority')::integer, 0), due,
            coalesce((opts->>'max_attempts')::integer, 3),
            coalesce((opts->>'timeout_ms')::bigint, 1800000),
            coalesce((opts->'backoff'->>'base_ms')::bigint, 1000),
            coalesce((opts->'backoff'->>'max_ms')::bigint, 600000),
            now_ms, now_ms);
    RETURN new_id;
END
$$;

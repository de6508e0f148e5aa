-- Dedupe keys: unique among a tenant's unfinished jobs. A second submit with the same
-- key is answered with the existing job instead of creating one.
ALTER TABLE ferry.jobs ADD COLUMN dedupe_key text;
CREATE UNIQUE INDEX jobs_dedupe ON ferry.jobs (tenant_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('scheduled', 'pending', 'running');

-- Paused kind patterns: jobs whose kind matches are not claimed (running ones finish).
-- `prefix` is the pattern's match form: the exact kind, the prefix with its dot for
-- `a.b.*`, or '' for `*` (which matches everything).
CREATE TABLE ferry.paused_kinds (
    tenant_id   text    NOT NULL,
    pattern     text    NOT NULL,
    exact       boolean NOT NULL,
    prefix      text    NOT NULL,
    paused_at   bigint  NOT NULL,
    PRIMARY KEY (tenant_id, pattern)
);

-- ferry.enqueue learns dedupe_key too.
CREATE OR REPLACE FUNCTION ferry.enqueue(kind text, payload jsonb, opts jsonb DEFAULT '{}')
RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    new_id    uuid   := ferry.uuid_v7();
    now_ms    bigint := ferry.now_ms();
    due       bigint := now_ms;
    unknown   text;
    existing  uuid;
BEGIN
    IF kind IS NULL OR kind !~ '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$' OR length(kind) > 128 THEN
        RAISE EXCEPTION 'ferry.enqueue: % is not a valid kind (dot-separated segments of letters, digits, _ or -)', kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    opts := coalesce(opts, '{}');
    SELECT string_agg(k, ', ') INTO unknown FROM jsonb_object_keys(opts) AS k
        WHERE k NOT IN ('labels', 'priority', 'run_at', 'delay_ms', 'max_attempts', 'timeout_ms', 'backoff', 'dedupe_key');
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
                            created_at, updated_at, dedupe_key)
    VALUES (new_id, 'default', kind,
            CASE WHEN due > now_ms THEN 'scheduled' ELSE 'pending' END,
            coalesce(payload, '{}'), coalesce(opts->'labels', '{}'),
            coalesce((opts->>'priority')::integer, 0), due,
            coalesce((opts->>'max_attempts')::integer, 3),
            coalesce((opts->>'timeout_ms')::bigint, 1800000),
            coalesce((opts->'backoff'->>'base_ms')::bigint, 1000),
            coalesce((opts->'backoff'->>'max_ms')::bigint, 600000),
            now_ms, now_ms, opts->>'dedupe_key')
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

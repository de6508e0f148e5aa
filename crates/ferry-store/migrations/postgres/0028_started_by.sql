-- `job.started` names the worker that took the attempt (`{"worker_id": …}`), so a job's
-- history says which worker ran each attempt. The function is 0014's otherwise.
CREATE OR REPLACE FUNCTION ferry.record_job_status() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    finished_batch uuid;
BEGIN
    INSERT INTO ferry.events (tenant_id, type, job_id, kind, attempt, data, at)
        SELECT n.tenant_id,
               CASE n.status WHEN 'running' THEN 'job.started'
                             WHEN 'completed' THEN 'job.completed'
                             WHEN 'failed' THEN 'job.failed'
                             WHEN 'cancelled' THEN 'job.cancelled'
                             ELSE 'job.retrying' END,
               n.id, n.kind, n.attempt,
               CASE WHEN n.status = 'running' THEN jsonb_build_object('worker_id', n.worker_id)
                    WHEN n.status IN ('failed', 'scheduled', 'pending') THEN n.error END,
               n.updated_at
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.status IS DISTINCT FROM n.status
          AND NOT (o.status = 'scheduled' AND n.status = 'pending')
        ORDER BY n.id;

    FOR finished_batch IN
        SELECT DISTINCT n.batch_id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.batch_id IS NOT NULL AND n.finished_at IS NOT NULL AND o.finished_at IS NULL
        ORDER BY n.batch_id
    LOOP
        PERFORM pg_advisory_xact_lock(1717924466, hashtext(finished_batch::text));
        -- A new statement: a fresh snapshot, taken after this batch's turn began.
        INSERT INTO ferry.events (tenant_id, type, kind, data, at)
            SELECT b.tenant_id, 'batch.finished', b.kind,
                   jsonb_build_object('batch_id', b.id,
                       'status', CASE WHEN b.cancelled_at IS NOT NULL THEN 'cancelled'
                                      WHEN c.failed + c.cancelled > 0 THEN 'failed'
                                      ELSE 'completed' END,
                       'total', b.total, 'completed', c.completed, 'failed', c.failed,
                       'cancelled', c.cancelled),
                   c.at
            FROM ferry.batches b,
                 LATERAL (SELECT count(*) FILTER (WHERE j.status = 'completed') AS completed,
                                 count(*) FILTER (WHERE j.status = 'failed') AS failed,
                                 count(*) FILTER (WHERE j.status = 'cancelled') AS cancelled,
                                 count(*) FILTER (WHERE j.finished_at IS NULL) AS unfinished,
                                 max(j.updated_at) AS at
                            FROM ferry.jobs j WHERE j.batch_id = b.id) c
            WHERE b.id = finished_batch AND c.unfinished = 0;
    END LOOP;
    RETURN NULL;
END
$$;

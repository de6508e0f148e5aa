-- Batch results are read in an order no later commit can jump into. Each finished batch item
-- records the id of the transaction that finished it (`finish_tx`), and readers only return
-- items whose transaction id is below the oldest transaction still running
-- (`pg_snapshot_xmin`): every item finished later carries a larger id, so paging by
-- `(finish_tx, id)` never skips one that committed late.
ALTER TABLE ferry.jobs ADD COLUMN finish_tx bigint;
UPDATE ferry.jobs SET finish_tx = 0 WHERE batch_id IS NOT NULL AND finished_at IS NOT NULL;
CREATE INDEX jobs_batch_finish ON ferry.jobs (batch_id, finish_tx, id) WHERE batch_id IS NOT NULL;

CREATE OR REPLACE FUNCTION ferry.stamp_batch_finish() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.finish_tx := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_batch_finished
    BEFORE UPDATE ON ferry.jobs
    FOR EACH ROW
    WHEN (NEW.batch_id IS NOT NULL AND NEW.finished_at IS NOT NULL
          AND OLD.finished_at IS DISTINCT FROM NEW.finished_at)
    EXECUTE FUNCTION ferry.stamp_batch_finish();

-- Batch results are read in the order items *committed* as finished, not by `finished_at`:
-- a writer takes its clock before it gets the write lock, so an item stamped earlier can
-- commit later and a reader paging by time would skip it. One writer commits at a time, so
-- a per-batch counter bumped in the finishing statement is commit order.
ALTER TABLE ferry_jobs ADD COLUMN finish_seq INTEGER;
UPDATE ferry_jobs SET finish_seq = finished_at WHERE batch_id IS NOT NULL AND finished_at IS NOT NULL;
CREATE INDEX ferry_jobs_batch_finish ON ferry_jobs (batch_id, finish_seq) WHERE batch_id IS NOT NULL;

CREATE TRIGGER ferry_jobs_batch_finished AFTER UPDATE OF finished_at ON ferry_jobs
    WHEN NEW.batch_id IS NOT NULL AND NEW.finished_at IS NOT NULL
     AND OLD.finished_at IS NOT NEW.finished_at
BEGIN
    UPDATE ferry_jobs
       SET finish_seq = (SELECT coalesce(max(finish_seq), 0) + 1 FROM ferry_jobs WHERE batch_id = NEW.batch_id)
     WHERE id = NEW.id;
END;

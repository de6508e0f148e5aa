-- Chains: the parent's result, given to a job that a `then` enqueued beside its payload
-- (JSON), so the payload stays as submitted and every kind can be chained.
ALTER TABLE ferry_jobs ADD COLUMN input TEXT;

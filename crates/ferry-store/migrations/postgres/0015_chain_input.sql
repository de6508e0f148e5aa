-- Chains: the parent's result, given to a job that a `then` enqueued beside its payload,
-- so the payload stays as submitted and every kind can be chained.
ALTER TABLE ferry.jobs ADD COLUMN input jsonb;

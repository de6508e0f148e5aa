-- Chains: a job's `then` specs (JSON), enqueued in the transaction that completes it, and
-- the parent of a job so enqueued.
ALTER TABLE ferry_jobs ADD COLUMN then_specs TEXT;
ALTER TABLE ferry_jobs ADD COLUMN parent_id TEXT;

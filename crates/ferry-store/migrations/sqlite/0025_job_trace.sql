-- A job's trace (issue #18): the W3C traceparent it was submitted under (or the server's
-- submit span), handed to the worker that claims it and inherited by a chain's children.
ALTER TABLE ferry_jobs ADD COLUMN traceparent TEXT;

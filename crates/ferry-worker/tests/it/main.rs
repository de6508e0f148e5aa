//! ferry-worker's integration tests, one binary (one link) with a module per area: the
//! runtime against a real server, completions and reports under faults, failover between
//! instances, flow control under load, poison jobs, awkward HTTP answers and the egress
//! policy.

mod completions;
mod egress;
mod failover;
mod flow;
mod http_answers;
mod poison;
mod reports;
mod runtime;

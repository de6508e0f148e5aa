//! ferry-worker's integration tests, one binary (one link) with a module per area: the
//! runtime against a real server, completions and reports under faults, failover between
//! instances, flow control under load, poison jobs and awkward HTTP answers.

mod completions;
mod failover;
mod flow;
mod http_answers;
mod poison;
mod reports;
mod runtime;

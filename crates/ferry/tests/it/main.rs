//! The `ferry` binary's integration tests, one test binary with a module per area: the CLI
//! (`cli`), processes (`processes`: serve, worker, demo, signals), a cluster of servers,
//! datasets end to end, the examples the docs use, secrets kept out of every surface, jobs
//! through proxies, what the logs say, the traces the binaries export, a worker's metrics, and the tidy rules over the whole workspace. Helpers that start the real binary live in `common`.

mod cli;
mod cluster;
mod common;
mod datasets;
mod examples;
mod identity;
mod logs;
mod processes;
mod proxies;
mod secrets;
mod tidy;
mod traces;
mod users;
mod worker_metrics;

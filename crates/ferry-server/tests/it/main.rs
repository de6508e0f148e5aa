//! ferry-server's integration tests, one binary (one link) with a module per area: the
//! HTTP API's stories (`api`, with webhooks and schedules in `api::hooks`), chains,
//! datasets, limits, per-domain politeness, the dashboard (`dashboard`; its batches pages in
//! `dashboard_batches`, the jobs list's filters and selection in `dashboard_jobs`, egress
//! and secrets in `dashboard_security`), what operators watch
//! (`observe`), the API document (`openapi`), PostgreSQL-only behaviour and a disk that fills up. Each starts the real server on a random port through
//! `ferry_testkit::TestServer`.

mod api;
mod chains;
mod contract;
mod dashboard;
mod dashboard_batches;
mod dashboard_jobs;
mod dashboard_recipes;
mod dashboard_security;
mod datasets;
mod identity;
mod limits;
mod observe;
mod openapi;
mod politeness;
mod postgres;
mod storage;

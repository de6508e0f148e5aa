//! A small embedded migration runner: numbered SQL files compiled into the binary,
//! each applied once in its own transaction and recorded in `ferry_migrations`.

/// One migration: its number, a name, and the SQL to run.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// SQLite migrations, oldest first.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "jobs",
        sql: include_str!("../migrations/sqlite/0001_jobs.sql"),
    },
    Migration {
        version: 2,
        name: "dedupe_and_pause",
        sql: include_str!("../migrations/sqlite/0002_dedupe_and_pause.sql"),
    },
    Migration {
        version: 3,
        name: "batches",
        sql: include_str!("../migrations/sqlite/0003_batches.sql"),
    },
    Migration {
        version: 4,
        name: "chains",
        sql: include_str!("../migrations/sqlite/0004_chains.sql"),
    },
    Migration {
        version: 5,
        name: "dedupe_ttl",
        sql: include_str!("../migrations/sqlite/0005_dedupe_ttl.sql"),
    },
    Migration {
        version: 6,
        name: "flow_keys",
        sql: include_str!("../migrations/sqlite/0006_flow_keys.sql"),
    },
    Migration {
        version: 7,
        name: "events",
        sql: include_str!("../migrations/sqlite/0007_events.sql"),
    },
    Migration {
        version: 8,
        name: "batch_finish_order",
        sql: include_str!("../migrations/sqlite/0008_batch_finish_order.sql"),
    },
    Migration {
        version: 9,
        name: "sessions_artifacts",
        sql: include_str!("../migrations/sqlite/0009_sessions_artifacts.sql"),
    },
    Migration {
        version: 10,
        name: "event_order",
        sql: include_str!("../migrations/sqlite/0010_event_order.sql"),
    },
    Migration {
        version: 11,
        name: "webhooks",
        sql: include_str!("../migrations/sqlite/0011_webhooks.sql"),
    },
    Migration {
        version: 12,
        name: "schedules",
        sql: include_str!("../migrations/sqlite/0012_schedules.sql"),
    },
    Migration {
        version: 13,
        name: "datasets",
        sql: include_str!("../migrations/sqlite/0013_datasets.sql"),
    },
    Migration {
        version: 14,
        name: "batch_events",
        sql: include_str!("../migrations/sqlite/0014_batch_events.sql"),
    },
    Migration {
        version: 15,
        name: "chain_input",
        sql: include_str!("../migrations/sqlite/0015_chain_input.sql"),
    },
    Migration {
        version: 16,
        name: "event_type_index",
        sql: include_str!("../migrations/sqlite/0016_event_type_index.sql"),
    },
    Migration {
        version: 17,
        name: "keys",
        sql: include_str!("../migrations/sqlite/0017_keys.sql"),
    },
    Migration {
        version: 18,
        name: "default_tenant",
        sql: include_str!("../migrations/sqlite/0018_default_tenant.sql"),
    },
    Migration {
        version: 19,
        name: "audit",
        sql: include_str!("../migrations/sqlite/0019_audit.sql"),
    },
    Migration {
        version: 20,
        name: "tenant_quotas",
        sql: include_str!("../migrations/sqlite/0020_tenant_quotas.sql"),
    },
    Migration {
        version: 21,
        name: "users",
        sql: include_str!("../migrations/sqlite/0021_users.sql"),
    },
    Migration {
        version: 22,
        name: "workers",
        sql: include_str!("../migrations/sqlite/0022_workers.sql"),
    },
    Migration {
        version: 23,
        name: "tenant_egress",
        sql: include_str!("../migrations/sqlite/0023_tenant_egress.sql"),
    },
    Migration {
        version: 24,
        name: "secrets",
        sql: include_str!("../migrations/sqlite/0024_secrets.sql"),
    },
    Migration {
        version: 25,
        name: "job_trace",
        sql: include_str!("../migrations/sqlite/0025_job_trace.sql"),
    },
    Migration {
        version: 26,
        name: "batch_list",
        sql: include_str!("../migrations/sqlite/0026_batch_list.sql"),
    },
    Migration {
        version: 27,
        name: "job_children",
        sql: include_str!("../migrations/sqlite/0027_job_children.sql"),
    },
    Migration {
        version: 28,
        name: "started_by",
        sql: include_str!("../migrations/sqlite/0028_started_by.sql"),
    },
    Migration {
        version: 29,
        name: "batch_event_trigger",
        sql: include_str!("../migrations/sqlite/0029_batch_event_trigger.sql"),
    },
];

/// PostgreSQL migrations, oldest first.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "jobs",
        sql: include_str!("../migrations/postgres/0001_jobs.sql"),
    },
    Migration {
        version: 2,
        name: "dedupe_and_pause",
        sql: include_str!("../migrations/postgres/0002_dedupe_and_pause.sql"),
    },
    Migration {
        version: 3,
        name: "batches",
        sql: include_str!("../migrations/postgres/0003_batches.sql"),
    },
    Migration {
        version: 4,
        name: "chains",
        sql: include_str!("../migrations/postgres/0004_chains.sql"),
    },
    Migration {
        version: 5,
        name: "dedupe_ttl",
        sql: include_str!("../migrations/postgres/0005_dedupe_ttl.sql"),
    },
    Migration {
        version: 6,
        name: "flow_keys",
        sql: include_str!("../migrations/postgres/0006_flow_keys.sql"),
    },
    Migration {
        version: 7,
        name: "events",
        sql: include_str!("../migrations/postgres/0007_events.sql"),
    },
    Migration {
        version: 8,
        name: "batch_finish_order",
        sql: include_str!("../migrations/postgres/0008_batch_finish_order.sql"),
    },
    Migration {
        version: 9,
        name: "sessions_artifacts",
        sql: include_str!("../migrations/postgres/0009_sessions_artifacts.sql"),
    },
    Migration {
        version: 10,
        name: "event_order",
        sql: include_str!("../migrations/postgres/0010_event_order.sql"),
    },
    Migration {
        version: 11,
        name: "webhooks",
        sql: include_str!("../migrations/postgres/0011_webhooks.sql"),
    },
    Migration {
        version: 12,
        name: "schedules",
        sql: include_str!("../migrations/postgres/0012_schedules.sql"),
    },
    Migration {
        version: 13,
        name: "datasets",
        sql: include_str!("../migrations/postgres/0013_datasets.sql"),
    },
    Migration {
        version: 14,
        name: "batch_events",
        sql: include_str!("../migrations/postgres/0014_batch_events.sql"),
    },
    Migration {
        version: 15,
        name: "chain_input",
        sql: include_str!("../migrations/postgres/0015_chain_input.sql"),
    },
    Migration {
        version: 16,
        name: "event_type_index",
        sql: include_str!("../migrations/postgres/0016_event_type_index.sql"),
    },
    Migration {
        version: 17,
        name: "keys",
        sql: include_str!("../migrations/postgres/0017_keys.sql"),
    },
    Migration {
        version: 18,
        name: "default_tenant",
        sql: include_str!("../migrations/postgres/0018_default_tenant.sql"),
    },
    Migration {
        version: 19,
        name: "audit",
        sql: include_str!("../migrations/postgres/0019_audit.sql"),
    },
    Migration {
        version: 20,
        name: "tenant_quotas",
        sql: include_str!("../migrations/postgres/0020_tenant_quotas.sql"),
    },
    Migration {
        version: 21,
        name: "users",
        sql: include_str!("../migrations/postgres/0021_users.sql"),
    },
    Migration {
        version: 22,
        name: "workers",
        sql: include_str!("../migrations/postgres/0022_workers.sql"),
    },
    Migration {
        version: 23,
        name: "tenant_egress",
        sql: include_str!("../migrations/postgres/0023_tenant_egress.sql"),
    },
    Migration {
        version: 24,
        name: "secrets",
        sql: include_str!("../migrations/postgres/0024_secrets.sql"),
    },
    Migration {
        version: 25,
        name: "job_trace",
        sql: include_str!("../migrations/postgres/0025_job_trace.sql"),
    },
    Migration {
        version: 26,
        name: "batch_list",
        sql: include_str!("../migrations/postgres/0026_batch_list.sql"),
    },
    Migration {
        version: 27,
        name: "job_children",
        sql: include_str!("../migrations/postgres/0027_job_children.sql"),
    },
    Migration {
        version: 28,
        name: "started_by",
        sql: include_str!("../migrations/postgres/0028_started_by.sql"),
    },
];

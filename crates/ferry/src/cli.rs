//! The command line, as clap definitions. Every flag that has an environment variable
//! names it; `ferry.toml` can set the same things (see `config.rs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod identity;
mod security;
pub use identity::*;
pub use security::*;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Offload browser automation and other heavy jobs to workers anywhere"
)]
pub struct Cli {
    /// Config file (default: ./ferry.toml when it exists).
    #[arg(long, global = true, env = "FERRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "FERRY_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (client and worker HTTP APIs).
    Serve(ServeArgs),
    /// Run a worker that pulls jobs from a server.
    Worker(WorkerArgs),
    /// Submit, inspect and manage jobs.
    Job(JobArgs),
    /// Create and follow batches: one job per item, with live progress.
    Batch(BatchArgs),
    /// Add, list and remove cron schedules.
    Schedule(ScheduleArgs),
    /// List datasets, see what runs changed, export items as JSON, JSONL or CSV.
    Dataset(DatasetArgs),
    /// Pause, resume and list paused kinds (paused jobs are not claimed; running ones finish).
    Kinds(KindsArgs),
    /// The tenant's jobs at a glance: counts by kind and state, the last hour's throughput
    /// and failure rate, the oldest waiting job, connected workers.
    Status(ConnectArgs),
    /// The tenant's workers heard from in the last day: kinds, jobs in hand, last seen.
    Workers(ConnectArgs),
    /// Save, list and remove the tenant's secrets (used by jobs as {{secret.NAME}}).
    Secret(SecretArgs),
    /// Show or set where the tenant's jobs and webhooks may connect.
    Egress(EgressArgs),
    /// Make and list tenants (on this server's database).
    Tenant(TenantArgs),
    /// Make, list and revoke a tenant's API keys (on this server's database).
    Key(KeyArgs),
    /// Make and revoke a tenant's worker tokens, optionally limited to kinds.
    WorkerToken(WorkerTokenArgs),
    /// Add, list and remove users (people who log in), set their passwords.
    User(UserArgs),
    /// Measure Ferry on this machine.
    Bench(BenchArgs),
    /// Print the API's OpenAPI 3.1 document (what `GET /v1/openapi.json` serves), to
    /// generate a client from.
    Openapi,
    /// Start a server with an embedded worker and run example jobs against a local site.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7878].
    #[arg(long, env = "FERRY_LISTEN")]
    pub listen: Option<String>,
    /// Where the SQLite database and generated tokens live [default: ./ferry-data].
    #[arg(long, env = "FERRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://<data-dir>/ferry.db].
    #[arg(long, env = "FERRY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Also run a worker in this process (the one-process mode for a laptop).
    #[arg(long)]
    pub with_worker: bool,
    /// Jobs the embedded worker runs at once.
    #[arg(long, env = "FERRY_WORKER_CONCURRENCY")]
    pub worker_concurrency: Option<usize>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The server's URL [default: http://127.0.0.1:7878]; several instances of one
    /// deployment as a comma-separated list, tried in turn when one is unreachable.
    #[arg(long, env = "FERRY_SERVER_URL")]
    pub server: Option<String>,
    /// Kind patterns to claim, comma separated (default: every kind this worker has a
    /// handler for). Only the kinds it has handlers for are claimed.
    #[arg(long, value_delimiter = ',')]
    pub kinds: Option<Vec<String>>,
    /// Jobs run at once [default: 4].
    #[arg(long, env = "FERRY_WORKER_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// This worker's id [default: hostname-pid].
    #[arg(long, env = "FERRY_WORKER_ID")]
    pub id: Option<String>,
    /// Lease to ask for, in ms [default: the server's].
    #[arg(long, env = "FERRY_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// Seconds running jobs may finish after SIGTERM [default: 30].
    #[arg(long)]
    pub shutdown_grace_secs: Option<u64>,
    /// Data dir to read a generated worker token from when FERRY_WORKER_TOKEN is unset.
    #[arg(long, env = "FERRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Take no browser.run jobs even when Chromium is installed.
    #[arg(long, env = "FERRY_NO_BROWSER")]
    pub no_browser: bool,
    /// Serve this worker's Prometheus metrics at http://ADDR/metrics (attempts, browser
    /// pages, Chromium's memory, step durations), e.g. 127.0.0.1:9464.
    #[arg(long, env = "FERRY_WORKER_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Where the job commands find the server.
#[derive(Debug, Args)]
pub struct Connect {
    /// The server's URL [default: http://127.0.0.1:7878].
    #[arg(long, global = true, env = "FERRY_SERVER_URL")]
    pub server: Option<String>,
    /// Data dir to read a generated API token from when FERRY_API_TOKEN is unset.
    #[arg(long, global = true, env = "FERRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: ScheduleCommand,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule: every tick of CRON (in --timezone) enqueues a KIND job.
    Add {
        name: String,
        /// `*/15 * * * *`; a sixth leading field is seconds.
        cron: String,
        kind: String,
        /// The job's payload as JSON.
        #[arg(long, conflicts_with = "payload_file")]
        payload: Option<String>,
        /// Read the payload from a JSON file, or YAML if it ends in .yaml/.yml (- for standard input).
        #[arg(long)]
        payload_file: Option<PathBuf>,
        /// Set the recipe input NAME (`{{input.NAME}}`) in the payload's `inputs` (repeatable).
        #[arg(long = "input", value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// IANA time zone [default: UTC].
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Skip a tick missed while no server ran, instead of firing it once on start.
        #[arg(long)]
        no_catch_up: bool,
    },
    /// List schedules with their next tick.
    List,
    /// Enqueue a schedule's job now, outside its ticks (prints the job's id).
    Run { name: String },
    /// Remove a schedule.
    Rm { name: String },
}

#[derive(Debug, Args)]
pub struct DatasetArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: DatasetCommand,
}

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// List datasets with their item counts and last run.
    List,
    /// The runs that fed a dataset, newest first, with what each changed.
    Runs { name: String },
    /// Export a dataset's items (streamed; a large dataset never sits in memory).
    Export {
        name: String,
        /// json, jsonl or csv.
        #[arg(long, default_value = "json")]
        format: ferry_core::dataset::ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Delete a dataset with its items and runs.
    Rm { name: String },
}

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job.
    Submit(SubmitArgs),
    /// Show one job.
    Get { id: String },
    /// List jobs, newest first.
    List(ListArgs),
    /// Wait until a job finishes, showing its progress; exits 0 if it completed, 3 if it
    /// failed or was cancelled, 4 if it is still unfinished after --timeout.
    Wait {
        id: String,
        /// Give up after this many seconds [default: wait forever].
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Print a job's items (its partial results), oldest first, one JSON value a line;
    /// with --json each line is the whole item (seq, attempt, data, created_at).
    Items {
        id: String,
        /// Start after this item seq (the last one printed by an earlier call).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Print at most this many items [default: all].
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Cancel a job (a running one is asked to stop).
    Cancel { id: String },
    /// Run a failed or cancelled job again.
    Retry { id: String },
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job's kind, e.g. http.request.
    pub kind: String,
    /// The payload as JSON.
    #[arg(long, conflicts_with = "payload_file")]
    pub payload: Option<String>,
    /// Read the payload from a JSON file, or YAML if it ends in .yaml/.yml (- for standard input).
    #[arg(long)]
    pub payload_file: Option<PathBuf>,
    /// A label key=value (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    #[arg(long)]
    pub priority: Option<i32>,
    #[arg(long)]
    pub delay_ms: Option<u64>,
    #[arg(long)]
    pub max_attempts: Option<u32>,
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Set the recipe input NAME (`{{input.NAME}}`) in the payload's `inputs` (repeatable).
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Wait up to this many seconds for the job to finish (any length: past the server's
    /// 60 s the CLI keeps waiting); exits 3 if it failed, 4 if it is still unfinished.
    #[arg(long)]
    pub wait: Option<f64>,
    /// At most one unfinished job with this key: a duplicate answers the existing job
    /// (and says so).
    #[arg(long)]
    pub dedupe_key: Option<String>,
    /// With --dedupe-key: a job with the key that finished less than this many ms ago
    /// also answers instead of a new one.
    #[arg(long)]
    pub dedupe_ttl_ms: Option<u64>,
    /// Jobs to enqueue when this one completes, as a JSON array of job specs
    /// (`[{"kind": "post.publish", "payload": {...}}]`); each gets the result as its `input`.
    #[arg(long)]
    pub then: Option<String>,
    /// Concurrency key: at most --concurrency-limit jobs with it run at once.
    #[arg(long, value_name = "KEY")]
    pub concurrency: Option<String>,
    /// With --concurrency (may be left out when the server configures a limit for the key).
    #[arg(long, requires = "concurrency")]
    pub concurrency_limit: Option<u32>,
    /// Rate key: starts of jobs with it are spaced (--rate-interval-ms) and/or capped
    /// (--rate-max per --rate-per-ms).
    #[arg(long, value_name = "KEY")]
    pub rate_limit: Option<String>,
    #[arg(long, requires = "rate_limit")]
    pub rate_interval_ms: Option<u64>,
    #[arg(long, requires = "rate_limit")]
    pub rate_max: Option<u32>,
    #[arg(long, requires = "rate_limit")]
    pub rate_per_ms: Option<u64>,
    /// Write the job's items to this dataset when it completes (upserted by --dataset-key).
    #[arg(long, requires = "dataset_key")]
    pub dataset: Option<String>,
    /// The item field that identifies an item in the dataset.
    #[arg(long, requires = "dataset")]
    pub dataset_key: Option<String>,
    /// `snapshot` (the default: items the run did not report are marked gone) or `merge`.
    #[arg(long, requires = "dataset")]
    pub dataset_mode: Option<ferry_core::dataset::OutputMode>,
    /// The share (0 to 1) of the dataset's rows a snapshot run may mark gone; a run that
    /// would mark more fails with DATASET_GONE_LIMIT and changes nothing (default 0.5; 1
    /// forces the run through).
    #[arg(long, requires = "dataset")]
    pub max_gone: Option<f64>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub kind: Option<String>,
    /// key:value (repeatable; all must match).
    #[arg(long = "label", value_name = "KEY:VALUE")]
    pub labels: Vec<String>,
    /// Only the jobs this job's chain enqueued (its id).
    #[arg(long)]
    pub parent: Option<String>,
    /// Only jobs whose kind or dedupe key contains this text (any case).
    #[arg(long)]
    pub search: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: BatchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Create a batch of KIND jobs, one per item.
    Submit {
        kind: String,
        /// The items as a JSON array.
        #[arg(long, conflicts_with = "items_file")]
        items: Option<String>,
        /// Read the items from a file: a JSON array, or one JSON value a line (- for stdin).
        #[arg(long)]
        items_file: Option<PathBuf>,
        /// Options every item shares, as JSON: labels, priority, delay_ms, max_attempts, …
        #[arg(long)]
        options: Option<String>,
    },
    /// Show a batch's status and progress.
    Get { id: String },
    /// Wait until a batch finishes, with a progress bar; exits 0 if every item completed,
    /// 3 if one did not, 4 if the batch is still unfinished after --timeout.
    Wait {
        id: String,
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Cancel a batch's unfinished items.
    Cancel { id: String },
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Args)]
pub struct KindsArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: KindsCommand,
}

#[derive(Debug, Subcommand)]
pub enum KindsCommand {
    /// Stop claims of kinds matching PATTERN (http.request, report.*, *).
    Pause { pattern: String },
    /// Let PATTERN's jobs be claimed again.
    Resume { pattern: String },
    /// List the paused patterns.
    List,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// No-op jobs through the real HTTP protocol: enqueue rate, drain rate, enqueue→start latency.
    Queue(BenchQueueArgs),
    /// Browser recipes in a real Chromium: pages per second and Chromium's memory.
    Browser(BenchBrowserArgs),
    /// Datasets: rows reported, applied (new, then an overlapping run) and exported per second.
    Dataset(BenchDatasetArgs),
    /// Events written per second (and jobs drained) with N idle, filtered SSE streams open.
    Events(BenchEventsArgs),
    /// The dashboard's pages with a large table: milliseconds per page (p50, p95, slowest).
    Dashboard(BenchDashboardArgs),
    /// GET /metrics with a large table: milliseconds per scrape (p50, p95, slowest).
    Metrics(BenchMetricsArgs),
}

#[derive(Debug, Args)]
pub struct BenchMetricsArgs {
    /// Finished (completed) jobs in the table.
    #[arg(long, default_value_t = 1_000_000)]
    pub jobs: u64,
    /// Jobs waiting, over twenty kinds.
    #[arg(long, default_value_t = 2_000)]
    pub waiting: usize,
    /// Scrapes timed.
    #[arg(long, default_value_t = 50)]
    pub scrapes: usize,
    /// Database URL (default: SQLite in a temporary directory).
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchDashboardArgs {
    /// Completed jobs in the table (finished within the overview's hour).
    #[arg(long, default_value_t = 100_000)]
    pub jobs: u64,
    /// Jobs submitted through the API to twenty kinds ...
    #[arg(long, default_value_t = 2_000)]
    pub waiting: usize,
    /// ... of which this many are claimed and failed (seven error codes).
    #[arg(long, default_value_t = 1_000)]
    pub failed: usize,
    /// Requests per page.
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
    /// Database URL (default: SQLite in a temporary directory).
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchEventsArgs {
    /// Numbers of open streams to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0usize, 100, 500])]
    pub streams: Vec<usize>,
    /// The streams' filter, as `GET /v1/events` takes it (the jobs never match it).
    #[arg(long, default_value = "type=job.failed")]
    pub filter: String,
    /// Jobs to enqueue and drain at each level.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Worker runtimes.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Jobs per claim (each worker's concurrency) and per enqueue request.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Database URL [default: SQLite in a temporary directory, a fresh one per level].
    #[arg(long, env = "FERRY_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchDatasetArgs {
    /// Rows per run.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Database URL [default: SQLite in a temporary directory].
    #[arg(long, env = "FERRY_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchBrowserArgs {
    /// Recipes to run (each: load a page, extract its rows), per concurrency level; with
    /// `--catalog`, catalog pages in all per level.
    #[arg(long, default_value_t = 200)]
    pub pages: usize,
    /// Concurrency levels to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 4])]
    pub concurrency: Vec<usize>,
    /// The catalog workload instead: `--pages` pages of 40 items split over one job per
    /// concurrency level, each walked by `paginate` and by the raw-CDP baseline.
    #[arg(long)]
    pub catalog: bool,
    /// With `--catalog`: rounds of baseline and recipe, alternated (the median is kept).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

#[derive(Debug, Args)]
pub struct BenchQueueArgs {
    /// Jobs to enqueue and drain.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Worker processes' worth of runtimes (each with its own HTTP client).
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Jobs per claim (each worker's concurrency) and per enqueue request.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Jobs submitted one at a time, paced, for the enqueue→start latency.
    #[arg(long, default_value_t = 500)]
    pub latency_jobs: usize,
    /// Finished jobs (of the same kind) put in the table first, to show that a long
    /// history does not slow the queue.
    #[arg(long, default_value_t = 0)]
    pub history: u64,
    /// Give every job a concurrency key, one of this many (0: no keys).
    #[arg(long, default_value_t = 0)]
    pub keys: usize,
    /// The limit of each key, with --keys.
    #[arg(long, default_value_t = 1)]
    pub key_limit: u32,
    /// Database URL [default: SQLite in a temporary directory].
    #[arg(long, env = "FERRY_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to keep the demo's data [default: a fresh temporary directory].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the server running after the demo jobs, and print the URLs to explore.
    #[arg(long)]
    pub keep_running: bool,
    /// Address to listen on [default: a free port on 127.0.0.1].
    #[arg(long)]
    pub listen: Option<String>,
    /// Serve only the demo site (its URL on the first line of output) until stopped: a
    /// site to try your own worker code against (a login, reviews behind it).
    #[arg(long, conflicts_with_all = ["data_dir", "keep_running", "listen"])]
    pub site_only: bool,
}

/// Every `ferry …` command the docs show parses with these definitions, so a renamed flag
/// cannot leave the docs behind: commands in code blocks completely; commands quoted in
/// the text may leave out required arguments (`ferry schedule add`) but name no flag or
/// subcommand that does not exist.
#[cfg(test)]
mod docs_tests {
    use clap::{Parser, error::ErrorKind};

    use super::Cli;

    /// Shell words of a command line: quotes, backslashes, `<placeholder>`s as one word,
    /// and nothing after a comment, `&`, `|`, `;` or `>`.
    fn words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    in_word = true;
                    word.extend(chars.by_ref().take_while(|&c| c != '\''));
                }
                '"' => {
                    in_word = true;
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => word.extend(chars.next()),
                            c => word.push(c),
                        }
                    }
                }
                '\\' => {
                    in_word = true;
                    word.extend(chars.next());
                }
                '<' if !in_word => {
                    in_word = true;
                    chars.by_ref().take_while(|&c| c != '>').for_each(drop);
                    word.push_str("PLACEHOLDER");
                }
                '#' if !in_word => break,
                '&' | '|' | ';' | '>' => break,
                c if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                c => {
                    in_word = true;
                    word.push(c);
                }
            }
        }
        if in_word {
            words.push(word);
        }
        words
    }

    /// The words from `ferry` on, when the line runs ferry (after `VAR=value`s).
    fn ferry_command(line: &str) -> Option<Vec<String>> {
        let words = words(line);
        let at = words.iter().position(|w| w == "ferry")?;
        words[..at]
            .iter()
            .all(|w| w.contains('='))
            .then(|| words[at..].to_vec())
            // A synopsis (`[--payload JSON]`) is not a command.
            .filter(|command| !command.iter().any(|w| w.starts_with("[-")))
    }

    /// (command line, from a code block) of every `ferry` command in `markdown`.
    fn commands(markdown: &str) -> Vec<(String, bool)> {
        let mut found = Vec::new();
        let mut in_block = false;
        let mut pending = String::new();
        // Text between code blocks, where an inline command may span a line break.
        let mut text = String::new();
        let inline = |text: &mut String, found: &mut Vec<(String, bool)>| {
            for (i, span) in text.split('`').enumerate() {
                if i % 2 == 1 && span.starts_with("ferry ") {
                    found.push((span.to_owned(), false));
                }
            }
            text.clear();
        };
        for line in markdown.lines() {
            if line.trim_start().starts_with("```") {
                in_block = !in_block;
                inline(&mut text, &mut found);
                continue;
            }
            if in_block {
                if let Some(start) = line.strip_suffix('\\') {
                    pending.push_str(start);
                    continue;
                }
                let full = std::mem::take(&mut pending) + line;
                if !full.trim_start().starts_with('#') && full.contains("ferry ") {
                    found.push((full, true));
                }
            } else {
                text.push_str(line);
                text.push(' ');
            }
        }
        inline(&mut text, &mut found);
        found
    }

    #[test]
    fn every_command_in_the_docs_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![root.join("README.md"), root.join("examples/README.md")];
        for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
        let mut checked = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).expect("read a doc");
            for (line, in_block) in commands(&text) {
                let Some(command) = ferry_command(&line) else {
                    continue;
                };
                checked += 1;
                if let Err(e) = Cli::try_parse_from(&command) {
                    let incomplete = matches!(
                        e.kind(),
                        ErrorKind::MissingRequiredArgument
                            | ErrorKind::MissingSubcommand
                            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                    );
                    assert!(
                        incomplete && !in_block,
                        "{}: `{line}` does not parse: {e}",
                        file.display()
                    );
                }
            }
        }
        assert!(checked > 20, "found only {checked} commands");
    }

    #[test]
    fn words_are_split_as_a_shell_would() {
        assert_eq!(
            words(r#"ferry job submit a --payload '{"x": 1}' --label "k=v w" <job id> # note"#),
            [
                "ferry",
                "job",
                "submit",
                "a",
                "--payload",
                r#"{"x": 1}"#,
                "--label",
                "k=v w",
                "PLACEHOLDER"
            ]
        );
        assert_eq!(
            ferry_command("FERRY_SERVER_URL=http://s:1 ferry worker &"),
            Some(vec!["ferry".to_owned(), "worker".to_owned()])
        );
        assert_eq!(ferry_command("cargo build -p ferry"), None);
    }
}

//! Keeps the codebase's invariants true (ARCHITECTURE.md): each rule below reads the
//! workspace's sources and names every place that breaks it.
//!
//! - No handler picks a tenant: `DEFAULT_TENANT` is defined in `ferry-core/src/tenant.rs`
//!   and used nowhere else; in `ferry-server`, only the config names the default tenant.
//! - Wall-clock time comes from a `Clock` in `ferry-core`, `ferry-store` and
//!   `ferry-server` (monotonic `Instant`s for timers are fine).
//! - SQL lives in `ferry-store`; the worker, the client and the browser do not depend on
//!   sqlx.
//! - Handlers reach the store only through the application services: nothing in
//!   `ferry-server/src/http/` calls `.store()` (the services in `app/` and `Queue` do).
//! - Every source file starts with `//!` saying what it is for.
//! - No source file grows past 800 lines; the few that are longer today may only shrink
//!   (and leave the list once they are short enough).
//!
//! Code after a file's `#[cfg(test)]` is its unit tests and is not held to the rules
//! about tenants, time and SQL.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

/// Files longer than [`MAX_LINES`] today, with the most lines each may have: a split is
/// planned for each (issue #13). Lower a number when a file shrinks; remove the entry once
/// the file is short enough.
const LONG_FILES: &[(&str, usize)] = &[
    ("crates/ferry-server/tests/it/api.rs", 1524),
    ("crates/ferry-store/tests/conformance.rs", 942),
];

/// Wall-clock reads outside a `Clock`, allowed with their reason.
const CLOCK_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "crates/ferry-store/src/sqlite.rs",
        "when a migration was applied: bookkeeping at start-up, before any clock is given",
    ),
    (
        "crates/ferry-store/src/postgres.rs",
        "when a migration was applied: bookkeeping at start-up, before any clock is given",
    ),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// Every `.rs` file under `crates/`, as (path from the root, text).
fn sources() -> Vec<(String, String)> {
    let root = root();
    let mut out = Vec::new();
    let mut dirs = vec![root.join("crates")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a source dir") {
            let path = entry.expect("a dir entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "target") {
                    continue;
                }
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(&root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("read a source file");
                out.push((rel, text));
            }
        }
    }
    out.sort();
    assert!(out.len() > 50, "found only {} source files", out.len());
    out
}

/// The crate a path belongs to (`crates/<name>/…`).
fn crate_of(path: &str) -> &str {
    path.split('/').nth(1).unwrap_or("")
}

fn is_src(path: &str) -> bool {
    path.split('/').nth(2) == Some("src")
}

/// A file's code without its unit tests (everything from `#[cfg(test)]` on).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// `path:line: text` for each line of `text` containing one of `needles`.
fn find(path: &str, text: &str, needles: &[&str]) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| needles.iter().any(|n| line.contains(n)))
        .map(|(i, line)| format!("{path}:{}: {}", i + 1, line.trim()))
        .collect()
}

fn fail_on(rule: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{rule}:\n  {}", found.join("\n  "));
}

#[test]
fn no_handler_picks_a_tenant() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        if !is_src(&path) || crate_of(&path) == "ferry-testkit" {
            continue;
        }
        let code = without_tests(&text);
        if path != "crates/ferry-core/src/tenant.rs" && path != "crates/ferry-core/src/lib.rs" {
            found.extend(find(&path, code, &["DEFAULT_TENANT"]));
        }
        if crate_of(&path) == "ferry-server" && path != "crates/ferry-server/src/config.rs" {
            found.extend(find(&path, code, &["TenantId::default()"]));
        }
    }
    fail_on(
        "the tenant comes from the request's Principal (or the config), never a constant",
        found,
    );
}

#[test]
fn handlers_reach_the_store_through_services() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        if path.starts_with("crates/ferry-server/src/http/") {
            found.extend(find(
                &path,
                without_tests(&text),
                &[
                    ".store()",
                    "&Store",
                    ": Store,",
                    ": Store)",
                    "ferry_store::Store;",
                    "ferry_store::{Store",
                ],
            ));
        }
    }
    fail_on(
        "handlers extract and serialise; the store is reached through an app service",
        found,
    );
}

#[test]
fn wall_clock_time_comes_from_a_clock() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        let owns_time = matches!(
            crate_of(&path),
            "ferry-core" | "ferry-store" | "ferry-server"
        );
        if !is_src(&path)
            || !owns_time
            || path == "crates/ferry-core/src/clock.rs"
            || CLOCK_EXCEPTIONS.iter().any(|(p, _)| *p == path)
        {
            continue;
        }
        found.extend(find(
            &path,
            without_tests(&text),
            &["Utc::now()", "SystemTime::now()", "Local::now()"],
        ));
    }
    fail_on(
        "take `now` from the Clock (queue.now(), a `now` argument)",
        found,
    );
}

#[test]
fn sql_lives_in_the_store() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        if !is_src(&path) || matches!(crate_of(&path), "ferry-store" | "ferry-testkit") {
            continue;
        }
        let code = without_tests(&text);
        found.extend(find(
            &path,
            code,
            &[
                "\"SELECT ",
                "\"INSERT INTO ",
                "\"DELETE FROM ",
                "\"CREATE TABLE ",
                "sqlx::query",
            ],
        ));
        found.extend(
            find(&path, code, &["\"UPDATE "])
                .into_iter()
                .filter(|l| l.contains(" SET ")),
        );
    }
    fail_on("SQL belongs in ferry-store", found);

    let root = root();
    let mut found = Vec::new();
    for name in ["ferry-worker", "ferry-client", "ferry-browser"] {
        let manifest = std::fs::read_to_string(root.join("crates").join(name).join("Cargo.toml"))
            .expect("a manifest");
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .map(|rest| rest.split("\n[").next().unwrap_or(""))
            .unwrap_or("");
        if deps.lines().any(|l| l.trim_start().starts_with("sqlx")) {
            found.push(format!("crates/{name}/Cargo.toml depends on sqlx"));
        }
    }
    fail_on(
        "the worker, the client and the browser never touch the database",
        found,
    );
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|(path, _)| is_src(path))
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(path, _)| path)
        .collect();
    fail_on("start each source file with a `//!` comment", found);
}

#[test]
fn source_files_stay_short() {
    let sources = sources();
    let mut found = Vec::new();
    for (path, text) in &sources {
        let lines = text.lines().count();
        match LONG_FILES.iter().find(|(p, _)| p == path) {
            Some((_, most)) if lines > *most => found.push(format!(
                "{path}: {lines} lines; it may only shrink (at most {most}): move a part into a module of its own"
            )),
            Some(_) if lines <= MAX_LINES => found.push(format!(
                "{path}: {lines} lines now: take it off LONG_FILES in this test"
            )),
            Some((_, most)) if lines + 50 < *most => found.push(format!(
                "{path}: {lines} lines now: lower its LONG_FILES entry to {lines}"
            )),
            Some(_) => {}
            None if lines > MAX_LINES => found.push(format!(
                "{path}: {lines} lines, over {MAX_LINES}: split it by what its parts do"
            )),
            None => {}
        }
    }
    for (path, _) in LONG_FILES {
        if !sources.iter().any(|(p, _)| p == path) {
            found.push(format!("{path} is gone: take it off LONG_FILES"));
        }
    }
    fail_on("source files stay under 800 lines", found);
}

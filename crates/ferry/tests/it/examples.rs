//! What the repository promises beside the code, checked so the docs cannot drift: the
//! example recipes README.md and docs/ use exist in `examples/`, are valid recipes and run
//! against the demo site as the docs say, a YAML example says what its JSON twin says, the
//! release build is stripped, and the license is the one Cargo.toml names.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `examples/*.json`, `*.yaml` and `*.yml`, sorted.
fn example_recipes() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("an examples/ directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
        })
        .collect();
    files.sort();
    files
}

/// As the CLI reads `--payload-file`: YAML for `.yaml`/`.yml`, JSON otherwise.
fn parse(path: &Path) -> Value {
    let text = read(path);
    let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    if yaml {
        serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
    }
}

#[test]
fn every_example_is_a_valid_recipe() {
    let files = example_recipes();
    assert!(files.len() >= 2, "examples: {files:?}");
    for path in &files {
        let recipe = parse(path);
        if let Err(errors) = ferry_core::recipe::validate(&recipe, "payload") {
            panic!("{} is not a valid recipe: {errors:?}", path.display());
        }
    }
}

#[test]
fn yaml_examples_say_what_their_json_twins_say() {
    let mut twins = 0;
    for path in example_recipes() {
        let json = path.with_extension("json");
        if path.extension().is_some_and(|e| e != "json") && json.exists() {
            assert_eq!(parse(&path), parse(&json), "{}", path.display());
            twins += 1;
        }
    }
    assert!(twins > 0, "reviews.yaml and reviews.json at least");
}

/// Every `examples/NAME` the docs mention, e.g. `examples/reviews.yaml` (not a crate's
/// `crates/ferry-worker/examples/…`).
fn examples_named_in(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in text.match_indices("examples/") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')) {
            continue;
        }
        let name: String = text[at + "examples/".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        let name = name.trim_end_matches('.').to_owned();
        if name.contains('.') {
            names.push(name);
        }
    }
    names
}

#[test]
fn every_example_the_docs_name_exists() {
    let root = root();
    let mut docs = vec![root.join("README.md"), root.join("examples/README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    let mut named = Vec::new();
    for doc in &docs {
        for name in examples_named_in(&read(doc)) {
            assert!(
                root.join("examples").join(&name).exists(),
                "{} names examples/{name}, which does not exist",
                doc.display()
            );
            named.push(name);
        }
    }
    // The README's tour uses these; the recipes page names every one.
    for name in ["reviews.yaml", "reviews.json"] {
        assert!(named.iter().any(|n| n == name), "no doc names {name}");
    }
    for path in example_recipes() {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            named.iter().any(|n| n == name),
            "examples/{name} is named by no document"
        );
    }
}

#[test]
fn the_release_build_is_stripped_and_the_license_is_apache_2() {
    let manifest: toml::Table = toml::from_str(&read(&root().join("Cargo.toml"))).expect("toml");
    let release = &manifest["profile"]["release"];
    assert_eq!(release.get("strip"), Some(&toml::Value::Boolean(true)));
    assert!(
        matches!(
            release.get("debug"),
            None | Some(toml::Value::Boolean(false))
        ),
        "no debug info in release builds: {release:?}"
    );
    assert_eq!(
        manifest["workspace"]["package"]["license"].as_str(),
        Some("Apache-2.0")
    );
    let license = read(&root().join("LICENSE"));
    for expected in [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
    ] {
        assert!(license.contains(expected), "LICENSE lacks {expected:?}");
    }
}

/// The binary's own dependencies (not its tests') never reach the test kit: the demo site
/// it serves is a crate of its own.
#[test]
fn the_binary_does_not_carry_the_test_kit() {
    let mut todo = vec!["ferry".to_owned()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let path = root().join("crates").join(&name).join("Cargo.toml");
        let manifest: toml::Table = toml::from_str(&read(&path)).expect("toml");
        if let Some(deps) = manifest.get("dependencies").and_then(toml::Value::as_table) {
            todo.extend(deps.keys().filter(|d| d.starts_with("ferry")).cloned());
        }
    }
    assert!(seen.contains("ferry-demo-site"), "{seen:?}");
    assert!(
        !seen.contains("ferry-testkit"),
        "the binary depends on: {seen:?}"
    );
}

/// The tour's commands with the real binary: `examples/reviews.yaml` with `--input site=…`
/// against the demo site, run by a worker with Chromium, then its rows with `job items`.
#[tokio::test]
async fn the_reviews_example_runs_against_the_demo_site() {
    use std::sync::Arc;

    use ferry_testkit::{API_TOKEN, TestServer, WORKER_TOKEN};
    let server = TestServer::builder().with_services().spawn().await;
    let site = ferry_testkit::fixture::spawn().await.expect("demo site");
    let chromium = Arc::new(
        ferry_browser::Chromium::launch(&ferry_browser::ChromiumConfig::default())
            .await
            .expect("Chromium starts (scripts/chromium.sh installs it)"),
    );
    let mut registry = ferry_worker::Registry::new();
    ferry_browser::register(
        &mut registry,
        ferry_browser::BrowserRun::new(chromium.clone()),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let client = ferry_client::Client::new(&server.url, ferry_core::Secret::new(WORKER_TOKEN))
        .expect("client");
    let worker = tokio::spawn(
        ferry_worker::Worker::new(client, registry, ferry_worker::WorkerConfig::default())
            .run(stop.clone()),
    );

    let recipe = root().join("examples/reviews.yaml");
    let input = format!("site={}", site.url.trim_start_matches("http://"));
    let ferry = |args: &[&str]| {
        let mut cmd = crate::common::ferry(args);
        cmd.env("FERRY_API_TOKEN", API_TOKEN)
            .env("FERRY_SERVER_URL", &server.url);
        cmd
    };
    let submitted = ferry(&[
        "job",
        "submit",
        "browser.run",
        "--payload-file",
        recipe.to_str().expect("utf-8 path"),
        "--input",
        &input,
        "--dataset",
        "reviews:shop-1",
        "--dataset-key",
        "id",
        "--wait",
        "60",
        "--json",
    ])
    .output()
    .await
    .expect("run ferry job submit");
    let stderr = String::from_utf8_lossy(&submitted.stderr);
    assert!(submitted.status.success(), "{stderr}");
    let job: Value = serde_json::from_slice(&submitted.stdout).expect("json");
    assert_eq!(job["status"], "completed", "{job}");
    let id = job["id"].as_str().expect("id");
    let items = ferry(&["job", "items", id])
        .output()
        .await
        .expect("run ferry job items");
    let rows: Vec<Value> = String::from_utf8_lossy(&items.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON value a line"))
        .collect();
    let ids: Vec<&Value> = rows.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, [&json!("r1"), &json!("r2"), &json!("r3")], "{rows:?}");
    assert_eq!(rows[0]["title"], "Great ferry");

    stop.cancel();
    worker.await.expect("worker task").expect("clean stop");
    if let Ok(chromium) = Arc::try_unwrap(chromium) {
        chromium.close().await;
    }
}

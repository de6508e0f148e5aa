//! `follow`: a list's links, each visited in a new tab of the job's own context (a few at
//! a time) where the step's own steps run; their rows come back in the links' order.

use std::collections::{BTreeMap, HashMap};

use ferry_core::{
    BoundSecret,
    egress::EgressPolicy,
    recipe::{Follow, Recipe},
};
use futures_util::StreamExt;
use serde_json::Value;

use crate::{
    CDP_TIMEOUT,
    dom::{Doc, Scope},
    error::BrowserError,
    host::Host,
    run::{Run, js_str},
    settle,
};

const ACTION: &str = "follow";

/// What a link's steps report, kept until the links before it have given theirs.
struct LinkHost {
    secrets: HashMap<String, BoundSecret>,
    egress: EgressPolicy,
    rows: Vec<Value>,
    artifacts: Vec<(String, String, Vec<u8>)>,
    /// `(field, the link's URL)`, added to every row.
    url_field: Option<(String, String)>,
    /// The link's place in the list, from 1: its artifacts are named by it.
    index: usize,
}

#[async_trait::async_trait]
impl Host for LinkHost {
    async fn rows(&mut self, rows: Vec<Value>) {
        for mut row in rows {
            if let (Some((field, url)), Some(object)) = (&self.url_field, row.as_object_mut()) {
                object.insert(field.clone(), Value::String(url.clone()));
            }
            self.rows.push(row);
        }
    }

    async fn load_session(&mut self, _name: &str) -> Result<Option<Value>, BrowserError> {
        Ok(None)
    }

    async fn save_session(&mut self, _name: &str, _state: Value) -> Result<(), BrowserError> {
        Err(BrowserError::Host {
            code: "INVALID_RECIPE".to_owned(),
            message: "a follow's steps cannot save a session".to_owned(),
            retryable: false,
        })
    }

    async fn artifact(&mut self, name: &str, content_type: &str, bytes: Vec<u8>) {
        // One link fails a run, so its failure artifacts keep their names (the job's
        // failure screenshot); a screenshot step's would come once per link.
        let name = if name.starts_with("failure") {
            name.to_owned()
        } else {
            format!("link-{}-{name}", self.index)
        };
        self.artifacts.push((name, content_type.to_owned(), bytes));
    }

    fn secret(&self, name: &str) -> Option<BoundSecret> {
        self.secrets.get(name).cloned()
    }

    fn egress(&self) -> EgressPolicy {
        self.egress.clone()
    }
}

/// One link's outcome.
struct Visited {
    url: String,
    rows: Vec<Value>,
    artifacts: Vec<(String, String, Vec<u8>)>,
    result: Result<(), BrowserError>,
}

/// Runs step `step`, a `follow`, from `doc` (the list's page): how many links it visited
/// and the rows their steps gave (handed to the run's host in the links' order).
pub(crate) async fn follow(
    run: &mut Run<'_>,
    doc: &Doc,
    step: usize,
    follow: &Follow,
    timeout_ms: u64,
) -> Result<(usize, usize), BrowserError> {
    settle::list(doc, step, ACTION, &follow.links, 1, timeout_ms).await?;
    let js = format!(
        "(() => {{ const seen = new Set(), out = []; \
           for (const e of QA({list})) {{ const v = e.getAttribute({attr}); if (!v) continue; \
             let u; try {{ u = new URL(v, e.ownerDocument.baseURI); }} catch (_) {{ continue; }} \
             if (u.protocol !== 'http:' && u.protocol !== 'https:') continue; \
             u.hash = ''; if (!seen.has(u.href)) {{ seen.add(u.href); out.push(u.href); }} }} \
           return out; }})()",
        list = js_str(&follow.links),
        attr = js_str(follow.attr.as_deref().unwrap_or("href")),
    );
    let mut links: Vec<String> =
        serde_json::from_value(doc.eval(step, ACTION, &js).await?).unwrap_or_default();
    if links.is_empty() {
        return Err(doc.timeout(
            step,
            ACTION,
            &format!("{} (no http(s) links)", follow.links),
            timeout_ms,
        ));
    }
    links.truncate(follow.max_links as usize);
    let count = links.len();

    // The link's steps as a recipe of their own, with the recipe's inputs and timeouts.
    let recipe = Recipe {
        steps: follow.steps.clone(),
        optional: follow.optional.clone(),
        ..run.recipe.clone()
    };
    // The secrets the steps name, looked up once: the tabs run side by side.
    let steps = serde_json::to_value(&follow.steps).unwrap_or(Value::Null);
    let secrets: HashMap<String, BoundSecret> = ferry_core::template::secret_names(&steps)
        .into_iter()
        .filter_map(|name| run.host.secret(&name).map(|s| (name, s)))
        .collect();
    let egress = run.host.egress();
    let (chromium, context, proxy, vars) = (
        run.chromium,
        run.context.clone(),
        run.egress,
        run.vars.clone(),
    );
    let pierce = run.scope.pierce;
    // The vars may hold what the secrets used so far were.
    let secrets_used = run
        .secrets_used
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let secrets_used = &secrets_used;
    let (recipe, secrets, egress, vars, context) = (&recipe, &secrets, &egress, &vars, &context);
    let visit = |(index, url): (usize, String)| async move {
        let mut host = LinkHost {
            secrets: secrets.clone(),
            egress: egress.clone(),
            rows: Vec::new(),
            artifacts: Vec::new(),
            url_field: follow.url_field.clone().map(|f| (f, url.clone())),
            index: index + 1,
        };
        let result = async {
            let (page, network) = chromium.open_tab(context, step, ACTION).await?;
            let mut vars: BTreeMap<String, String> = vars.clone();
            vars.insert("link".to_owned(), url.clone());
            let mut tab = Run {
                chromium,
                context: context.clone(),
                recipe,
                host: &mut host,
                tabs: vec![page.target_id().clone()],
                pages: HashMap::from([(page.target_id().clone(), page.clone())]),
                page: page.clone(),
                scope: Scope {
                    frames: Vec::new(),
                    pierce,
                },
                network,
                networks: Vec::new(),
                egress: proxy,
                vars,
                secrets_used: std::sync::Mutex::new(secrets_used.clone()),
                shared_proxy: true,
            };
            let done = match tab.goto(step, &url).await {
                Ok(()) => Box::pin(tab.steps()).await.map(drop),
                Err(e) => Err(e),
            };
            if done.is_err() {
                tab.failure_artifacts().await;
            }
            drop(tab);
            let _ = tokio::time::timeout(CDP_TIMEOUT, page.close()).await;
            done
        }
        .await;
        Visited {
            url,
            rows: host.rows,
            artifacts: host.artifacts,
            result,
        }
    };
    let mut visits = futures_util::stream::iter(links.into_iter().enumerate().map(visit))
        .buffered(follow.concurrency as usize);
    let mut rows = 0;
    while let Some(visited) = visits.next().await {
        for (name, content_type, bytes) in visited.artifacts {
            run.host.artifact(&name, &content_type, bytes).await;
        }
        if let Err(error) = visited.result {
            return Err(BrowserError::Follow {
                step,
                url: visited.url,
                error: Box::new(error),
            });
        }
        rows += visited.rows.len();
        if !visited.rows.is_empty() {
            run.host.rows(visited.rows).await;
        }
    }
    Ok((count, rows))
}

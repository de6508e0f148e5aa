//! A small local site for handlers to call in tests and in `ferry demo`: an echo, any
//! status, a flaky endpoint answering `429` with `Retry-After` before it succeeds, a
//! slow one and one that never answers. Served on 127.0.0.1 only; tests never reach
//! the internet.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::IntoResponse,
    routing::{any, get},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
struct Counters {
    hits: Mutex<HashMap<String, u32>>,
}

impl Counters {
    fn hit(&self, key: &str) -> u32 {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        let n = hits.entry(key.to_owned()).or_default();
        *n += 1;
        *n
    }
}

/// A running fixture site.
#[derive(Debug)]
pub struct Fixture {
    pub addr: SocketAddr,
    pub url: String,
    stop: CancellationToken,
}

impl Fixture {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts the site on 127.0.0.1 and a random port.
pub async fn spawn() -> std::io::Result<Fixture> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let app = router();
    let until = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(until.cancelled_owned())
            .await;
    });
    Ok(Fixture {
        addr,
        url: format!("http://{addr}"),
        stop,
    })
}

fn router() -> Router {
    Router::new()
        .route("/echo", any(echo))
        .route("/status/{code}", any(status))
        .route("/flaky/{key}/{failures}", any(flaky))
        .route("/slow/{ms}", get(slow))
        .route("/hang", get(hang))
        .route("/reviews/{shop}", get(reviews))
        .route("/site/reviews", get(site_reviews))
        .route("/site/delayed", get(site_delayed))
        .route("/site/search", get(site_search))
        .route("/site/cookie", get(site_cookie))
        .route("/site/paged", get(site_paged))
        .route("/site/feed", get(site_feed))
        .route("/site/feed/items", get(site_feed_items))
        .route("/site/form", get(site_form))
        .with_state(Arc::new(Counters::default()))
}

async fn echo(
    method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Json<Value> {
    let headers: HashMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let text = String::from_utf8_lossy(&body).into_owned();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Json(
        json!({"method": method.as_str(), "headers": headers, "query": query, "body": text, "json": json_body}),
    )
}

async fn status(Path(code): Path<u16>) -> impl IntoResponse {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(json!({"status": code})))
}

/// Answers `429` with `Retry-After: 1` for the first `failures` calls of `key`.
async fn flaky(
    State(counters): State<Arc<Counters>>,
    Path((key, failures)): Path<(String, u32)>,
) -> impl IntoResponse {
    let n = counters.hit(&key);
    if n <= failures {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            Json(json!({"try": n})),
        )
            .into_response();
    }
    Json(json!({"ok": true, "calls": n})).into_response()
}

async fn slow(Path(ms): Path<u64>) -> Json<Value> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(json!({"slept_ms": ms}))
}

async fn hang() -> Json<Value> {
    std::future::pending::<()>().await;
    Json(Value::Null)
}

/// A tiny JSON "partner API": three reviews per shop.
async fn reviews(Path(shop): Path<String>) -> Json<Value> {
    let reviews: Vec<Value> = (1..=3)
        .map(|i| json!({"id": format!("{shop}-{i}"), "stars": 6 - i, "text": format!("review {i} of {shop}")}))
        .collect();
    Json(json!({"shop": shop, "reviews": reviews}))
}

/// Pages for the browser worker: HTML the way partner sites serve it.
fn page(title: &str, body: &str) -> impl IntoResponse + use<> {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>\
             <body>{body}</body></html>"
        ),
    )
}

/// Three reviews, each with a title, stars as text, a link and messy whitespace.
async fn site_reviews() -> impl IntoResponse {
    page(
        "Reviews",
        r#"<ul id="reviews">
  <li class="review" data-id="r1"><h3>  Great   ferry </h3><span class="stars">5 stars</span>
      <a href="/r/1">more</a><p class="price">1,250.50 KRW</p></li>
  <li class="review" data-id="r2"><h3>Late again</h3><span class="stars">2 stars</span>
      <a href="/r/2">more</a><p class="price">980 KRW</p></li>
  <li class="review" data-id="r3"><h3>Fine</h3><span class="stars">4 stars</span>
      <a href="/r/3">more</a></li>
</ul>"#,
    )
}

/// A list that a script renders 300 ms after load.
async fn site_delayed() -> impl IntoResponse {
    page(
        "Delayed",
        r#"<div id="out"></div><script>
setTimeout(() => {
  document.getElementById('out').innerHTML =
    '<p class="item">alpha</p><p class="item">beta</p>';
}, 300);
</script>"#,
    )
}

/// A search form whose results are rendered by a click handler (no navigation).
async fn site_search() -> impl IntoResponse {
    page(
        "Search",
        r#"<input id="q" name="q"><button id="go" type="button">Search</button>
<ol id="results"></ol><script>
document.getElementById('go').addEventListener('click', () => {
  const q = document.getElementById('q').value;
  const ol = document.getElementById('results');
  ol.innerHTML = '';
  for (const n of [1, 2, 3]) {
    const li = document.createElement('li');
    li.className = 'result';
    li.textContent = q + ' #' + n;
    ol.appendChild(li);
  }
});
</script>"#,
    )
}

/// Shows the `visit` cookie this browser sent, then sets it: two jobs in isolated
/// contexts both see none.
async fn site_cookie(headers: HeaderMap) -> impl IntoResponse {
    let seen = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = format!("<p id=\"seen\">[{seen}]</p>");
    (
        [(header::SET_COOKIE, "visit=1; Path=/")],
        page("Cookie", &body),
    )
}

/// Reviews in pages of two, three pages, rendered by script; "Next" is a button without an
/// `href` that is disabled on the last page.
async fn site_paged() -> impl IntoResponse {
    page(
        "Paged",
        r#"<ul id="list"></ul><button id="next" type="button">Next</button><script>
const all = ['one', 'two', 'three', 'four', 'five', 'six'];
let at = 0;
function show() {
  const ul = document.getElementById('list');
  ul.innerHTML = '';
  for (const r of all.slice(at * 2, at * 2 + 2)) {
    const li = document.createElement('li'); li.className = 'row'; li.textContent = r; ul.appendChild(li);
  }
  document.getElementById('next').disabled = at * 2 + 2 >= all.length;
}
document.getElementById('next').addEventListener('click', () => {
  // Like a real site: the next page arrives a little later.
  setTimeout(() => { at += 1; show(); }, 150);
});
show();
</script>"#,
    )
}

/// A feed that loads 5 more items over `fetch` whenever the bottom is near, 12 in all.
async fn site_feed() -> impl IntoResponse {
    page(
        "Feed",
        r#"<style>body { overflow-anchor: none; }</style>
<div id="feed"></div><div style="height: 2000px"></div><script>
let offset = 0, loading = false, done = false;
async function more() {
  if (loading || done) return;
  loading = true;
  const items = await (await fetch('/site/feed/items?offset=' + offset)).json();
  const feed = document.getElementById('feed');
  for (const it of items) {
    const p = document.createElement('p'); p.className = 'post'; p.textContent = it; feed.appendChild(p);
  }
  offset += items.length;
  done = items.length === 0;
  loading = false;
}
window.addEventListener('scroll', () => {
  if (window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 100) more();
});
more();
</script>"#,
    )
}

async fn site_feed_items(Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let items: Vec<String> = (offset..12.min(offset + 5))
        .map(|i| format!("post {i}"))
        .collect();
    Json(items)
}

/// A select and an input that submits on Enter (rendered by script).
async fn site_form() -> impl IntoResponse {
    page(
        "Form",
        r#"<select id="size"><option value="s">S</option><option value="m">M</option></select>
<input id="name"><p id="out"></p><script>
document.getElementById('name').addEventListener('keydown', e => {
  if (e.key === 'Enter') {
    document.getElementById('out').textContent =
      document.getElementById('name').value + '/' + document.getElementById('size').value;
  }
});
</script>"#,
    )
}

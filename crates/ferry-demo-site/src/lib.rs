//! The demo site: a small local site that `ferry demo` and the tests run browser and HTTP
//! jobs against — an echo, any status, a flaky endpoint answering `429` with
//! `Retry-After` before it succeeds, a slow one and one that never answers, and pages the
//! way partner sites serve them (reviews, a login, script-paged lists, a feed, a
//! catalog, shadow roots, frames, a directory of links). Served on 127.0.0.1 only;
//! nothing here reaches the internet. It is its own crate so the `ferry` binary carries
//! the site without the test kit.

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
    response::Redirect,
    routing::{any, get},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod patterns;

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
    spawn_on(std::net::Ipv4Addr::LOCALHOST).await
}

/// Starts the site on another loopback address (`127.0.0.2` …) and a random port: a second
/// host for the egress tests, reachable only where 127.0.0.1 is not what is allowed.
pub async fn spawn_on(ip: std::net::Ipv4Addr) -> std::io::Result<Fixture> {
    if !ip.is_loopback() {
        return Err(std::io::Error::other("the demo site serves loopback only"));
    }
    let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
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
        .route("/redirect", get(redirect))
        .route("/site/reach", get(site_reach))
        .route("/open-data", get(open_data))
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
        .route("/site/consent", get(site_consent))
        .route("/site/more", get(site_more))
        .route("/site/virtual", get(site_virtual))
        .route("/site/form", get(site_form))
        .route("/site/login", get(site_login).post(site_login_post))
        .route("/site/account", get(site_account))
        .route("/site/account/reviews", get(site_account_reviews))
        .route("/site/product", get(site_product))
        .route("/site/links", get(site_links))
        .route("/site/limited/{key}", get(site_limited))
        .route("/site/hang", get(site_hang))
        .route("/site/error", get(site_error))
        .route("/site/catalog", get(site_catalog))
        .route("/bytes/{n}", get(bytes))
        .route("/nul", get(nul))
        .merge(patterns::routes())
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

/// `302` to `?to=`.
async fn redirect(Query(query): Query<HashMap<String, String>>) -> impl IntoResponse {
    match query.get("to") {
        Some(to) => Redirect::to(to).into_response(),
        None => (StatusCode::BAD_REQUEST, "?to= names where to").into_response(),
    }
}

/// A page whose script fetches `?to=` (a cross-origin fetch, as a page reading an internal
/// service would): `#fetch` becomes `ok <status> <text>` or `blocked`, and gets `data-done`.
async fn site_reach(Query(query): Query<HashMap<String, String>>) -> impl IntoResponse {
    let to = serde_json::to_string(query.get("to").map_or("", String::as_str))
        .unwrap_or_else(|_| "\"\"".into());
    axum::response::Html(format!(
        r#"<!doctype html><title>reach</title>
<p id="fetch">pending</p>
<script>
const out = document.getElementById('fetch');
const say = text => {{ out.textContent = text; out.dataset.done = '1'; }};
fetch({to}).then(r => r.text().then(t => say('ok ' + r.status + ' ' + t.slice(0, 40))))
  .catch(() => say('blocked'));
</script>"#
    ))
}

/// What an internal service would answer any page that asks (`Access-Control-Allow-Origin: *`).
async fn open_data() -> impl IntoResponse {
    (
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        "internal data",
    )
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
pub(crate) fn page(title: &str, body: &str) -> impl IntoResponse + use<> {
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

/// Five products behind a consent banner that covers the page a moment after it loads
/// (`?banner=0`: no banner at all); clicking a product first requires accepting.
async fn site_consent(Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    let banner = q.get("banner").is_none_or(|b| b != "0");
    let script = if banner {
        r#"<script>setTimeout(() => {
  const b = document.createElement('div'); b.id = 'consent';
  b.style = 'position: fixed; inset: 0; background: rgba(0,0,0,.6)';
  b.innerHTML = '<p>We use cookies.</p><button class="accept">Accept all</button>';
  b.querySelector('.accept').onclick = () => { b.remove(); document.body.dataset.consent = 'yes'; };
  document.body.appendChild(b);
}, 300);</script>"#
    } else {
        ""
    };
    page(
        "Consent",
        &format!(
            r#"<ul id="products">{}</ul>{script}"#,
            (1..=5)
                .map(|i| format!(
                    r#"<li class="product"><span class="name">Product {i}</span></li>"#
                ))
                .collect::<String>()
        ),
    )
}

/// A virtualized list: 500 items in a scrolling box 400 px high, of which only 20 rows
/// exist in the page at a time, recycled (moved and refilled) as the box scrolls.
async fn site_virtual() -> impl IntoResponse {
    page(
        "Virtual",
        r#"<div id="viewport" style="height: 400px; overflow: auto; position: relative">
<div id="spacer" style="height: 15000px; position: relative"></div></div><script>
const H = 30, N = 500, POOL = 20, spacer = document.getElementById('spacer');
const pool = [];
for (let i = 0; i < POOL; i++) {
  const d = document.createElement('div'); d.className = 'vrow';
  d.style = 'position: absolute; left: 0; right: 0; height: 30px';
  d.innerHTML = '<span class="id"></span> <span class="name"></span>';
  spacer.appendChild(d); pool.push(d);
}
function draw() {
  const first = Math.min(N - POOL, Math.floor(document.getElementById('viewport').scrollTop / H));
  pool.forEach((d, k) => {
    const i = first + k + 1;
    d.style.top = ((i - 1) * H) + 'px';
    d.querySelector('.id').textContent = i;
    d.querySelector('.name').textContent = 'Item ' + i;
  });
}
document.getElementById('viewport').addEventListener('scroll', draw);
draw();
</script>"#,
    )
}

/// A list of 100 rows shown 25 at a time: "Load more" appends the next 25 (after a short
/// fetch-like delay) and is gone once all are shown. `?replace=1`: each click replaces the
/// rows with the next 25 instead (a list paged in place).
async fn site_more(Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    let replace = q.get("replace").is_some_and(|r| r == "1");
    let script = r#"<ol id="rows"></ol><button id="more">Load more</button><script>
let shown = 0;
function add() {
  const rows = document.getElementById('rows');
  if (REPLACE) rows.innerHTML = '';
  for (let i = shown + 1; i <= shown + 25; i++) {
    const li = document.createElement('li'); li.className = 'row';
    li.innerHTML = '<span class="n">' + i + '</span> <span class="name">Row ' + i + '</span>';
    rows.appendChild(li);
  }
  shown += 25;
  if (shown >= 100) document.getElementById('more').remove();
}
add();
document.getElementById('more').onclick = () => setTimeout(add, 150);
</script>"#
        .replace("REPLACE", if replace { "true" } else { "false" });
    page("More", &script)
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

/// The demo login: user `demo`, password `ferry-demo`.
pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "ferry-demo";
const SESSION_COOKIE: &str = "sid=s-demo-7f3a";

fn signed_in(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(';').any(|c| c.trim() == SESSION_COOKIE))
}

fn login_form(error: &str) -> String {
    format!(
        r#"<form id="login" method="post" action="/site/login">
<label>User <input id="user" name="user"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="sign-in" type="submit">Sign in</button></form>{error}"#
    )
}

/// A login form (a plain form POST, as most partner sites still have).
async fn site_login() -> impl IntoResponse {
    page("Sign in", &login_form(""))
}

/// Right credentials set the session cookie and redirect to the account page; wrong ones
/// answer 401 with the form again.
async fn site_login_post(body: Bytes) -> axum::response::Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let ok = form.get("user").map(String::as_str) == Some(DEMO_USER)
        && form.get("password").map(String::as_str) == Some(DEMO_PASSWORD);
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            page(
                "Sign in",
                &login_form(r#"<p id="error">Wrong user or password</p>"#),
            ),
        )
            .into_response();
    }
    (
        [(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}; Path=/; HttpOnly; SameSite=Lax; Max-Age=86400"),
        )],
        Redirect::to("/site/account"),
    )
        .into_response()
}

/// Behind the login; its script remembers the shop in localStorage (the reviews page
/// reads it, so a restored session must bring storage back too).
async fn site_account(headers: HeaderMap) -> axum::response::Response {
    if !signed_in(&headers) {
        return Redirect::to("/site/login").into_response();
    }
    page(
        "Account",
        r#"<p id="who">Signed in as demo</p><a href="/site/account/reviews">Reviews</a>
<script>localStorage.setItem('shop', 'Harbor Cafe');</script>"#,
    )
    .into_response()
}

/// Seven reviews behind the login, three per page; "Next" is a script button, disabled on
/// the last page. Without the session cookie: a redirect to the login.
async fn site_account_reviews(headers: HeaderMap) -> axum::response::Response {
    if !signed_in(&headers) {
        return Redirect::to("/site/login").into_response();
    }
    page(
        "Reviews",
        r#"<p id="shop"></p><ul id="reviews"></ul><button id="next" type="button">Next</button><script>
document.getElementById('shop').textContent = localStorage.getItem('shop') || 'unknown shop';
const all = [
  ['rv-1', 'mina', 5, '2026.11.01', 'Fresh bread every morning'],
  ['rv-2', 'joon', 4, '2026.11.02', 'Good coffee, slow service'],
  ['rv-3', 'ana', 2, '2026.11.04', 'Cold soup'],
  ['rv-4', 'li', 5, '2026.11.07', 'Best croissant in town'],
  ['rv-5', 'sam', 3, '2026.11.09', 'Fine'],
  ['rv-6', 'eun', 4, '2026.11.12', 'Nice view of the harbor'],
  ['rv-7', 'tom', 1, '2026.11.15', 'Closed on a Tuesday'],
];
let at = 0;
function show() {
  const ul = document.getElementById('reviews');
  ul.innerHTML = '';
  for (const [id, who, stars, day, text] of all.slice(at * 3, at * 3 + 3)) {
    const li = document.createElement('li');
    li.className = 'review'; li.dataset.id = id;
    li.innerHTML = '<b class="author">by ' + who + '</b> <span class="stars">' + stars +
      ' stars</span> <time>' + day + '</time> <p class="text">' + text + '</p>';
    ul.appendChild(li);
  }
  document.getElementById('next').disabled = at * 3 + 3 >= all.length;
}
document.getElementById('next').addEventListener('click', () => {
  setTimeout(() => { at += 1; show(); }, 120);
});
show();
</script>"#,
    )
    .into_response()
}

/// A product page whose tabs render their panel on click.
async fn site_product() -> impl IntoResponse {
    page(
        "Product",
        r#"<h1 id="name">Harbor Blend 1 kg</h1>
<nav><button class="tab" data-tab="details">Details</button><button class="tab" data-tab="specs">Specs</button></nav>
<div id="panel"></div><script>
const panels = {
  details: '<p class="details">Dark roast, roasted weekly.</p>',
  specs: '<ul><li class="spec"><b>Weight</b> <span>1 kg</span></li>' +
         '<li class="spec"><b>Origin</b> <span>Colombia</span></li>' +
         '<li class="spec"><b>Price</b> <span>24,900 KRW</span></li></ul>',
};
for (const b of document.querySelectorAll('.tab')) {
  b.addEventListener('click', () => {
    setTimeout(() => { document.getElementById('panel').innerHTML = panels[b.dataset.tab]; }, 100);
  });
}
</script>"#,
    )
}

/// A link that opens the product page in a new tab.
async fn site_links() -> impl IntoResponse {
    page(
        "Links",
        r#"<a id="open-product" href="/site/product" target="_blank">Open the product</a>"#,
    )
}

/// Answers `429` with `Retry-After: 1` the first time per key, then a page.
async fn site_limited(
    State(counters): State<Arc<Counters>>,
    Path(key): Path<String>,
) -> axum::response::Response {
    let n = counters.hit(&format!("limited:{key}"));
    if n == 1 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            page("Slow down", "<p>Too many requests</p>"),
        )
            .into_response();
    }
    page("Limited", &format!(r#"<p class="ok">ok on visit {n}</p>"#)).into_response()
}

/// A page that never answers.
async fn site_hang() -> impl IntoResponse {
    std::future::pending::<()>().await;
    page("Never", "")
}

/// A page answering `500`.
async fn site_error() -> impl IntoResponse {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        page("Error", "<p>Something broke</p>"),
    )
}

/// Rows per catalog page.
pub const CATALOG_ROWS: usize = 40;

/// A catalog page (`?page=N&pages=M`, 1-based): [`CATALOG_ROWS`] items, each with an id
/// `pN-i`, a name and a price in won, and a `Next` link to page N+1 unless N is the last.
/// Like many real servers it flushes its HTML in parts as it renders (`flush_ms` between
/// parts, default 25): a browser shows a half-parsed list in the meantime.
async fn site_catalog(Query(q): Query<HashMap<String, String>>) -> axum::response::Response {
    let number = |key: &str, default: u64| {
        q.get(key)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let at = number("page", 1).max(1);
    let pages = number("pages", 1).max(1);
    let flush = Duration::from_millis(number("flush_ms", 25).min(2_000));
    let mut parts = vec![format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Catalog {at}</title></head>\
         <body><h1>Page {at} of {pages}</h1><ul id=\"list\">"
    )];
    for chunk in (0..CATALOG_ROWS).collect::<Vec<_>>().chunks(10) {
        let mut part = String::new();
        for i in chunk {
            let price = 1_000 * (at as usize) + 100 * i;
            part.push_str(&format!(
                "<li class=\"item\" data-id=\"p{at}-{i}\"><span class=\"name\">Item {at}-{i}</span> \
                 <span class=\"price\">\u{20a9}{},{:03}</span></li>",
                price / 1000,
                price % 1000
            ));
        }
        parts.push(part);
    }
    let next = if at < pages {
        format!(
            "<a id=\"next\" href=\"/site/catalog?page={}&pages={pages}&flush_ms={}\">Next</a>",
            at + 1,
            flush.as_millis()
        )
    } else {
        String::new()
    };
    parts.push(format!("</ul>{next}</body></html>"));
    let stream = futures_util::stream::unfold(
        (parts.into_iter(), true),
        move |(mut rest, first)| async move {
            let part = rest.next()?;
            if !first {
                tokio::time::sleep(flush).await;
            }
            Some((Ok::<_, std::convert::Infallible>(part), (rest, false)))
        },
    );
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// `n` bytes of `a`, streamed in 64 KiB chunks (an answer larger than anyone should keep).
async fn bytes(Path(n): Path<u64>) -> axum::response::Response {
    const CHUNK: u64 = 64 * 1024;
    let stream = futures_util::stream::unfold(0u64, move |sent| async move {
        if sent >= n {
            return None;
        }
        let len = CHUNK.min(n - sent);
        let chunk = Bytes::from(vec![b'a'; len as usize]);
        Some((Ok::<_, std::convert::Infallible>(chunk), sent + len))
    });
    (
        [(header::CONTENT_TYPE, "text/plain")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// A text answer and a JSON answer with U+0000 in them (`?json=1`).
async fn nul(Query(q): Query<HashMap<String, String>>) -> axum::response::Response {
    if q.contains_key("json") {
        (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"name": "a\u0000b", "ok": true}"#,
        )
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/plain")], "before\0after").into_response()
    }
}

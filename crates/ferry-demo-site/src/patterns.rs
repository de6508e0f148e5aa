//! Pages built the ways that stop a plain selector: product cards in shadow roots two
//! levels deep, price tables in a frame and a frame within it, a directory of shops
//! whose details are one link away, rows a page's load code fills in, and a link under
//! a layer that takes the clicks.

use axum::{Router, extract::Path, response::IntoResponse, routing::get};

use crate::page;

pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/site/shadow", get(shadow))
        .route("/site/frames", get(frames))
        .route("/site/frames/outer", get(frames_outer))
        .route("/site/frames/inner", get(frames_inner))
        .route("/site/directory", get(directory))
        .route("/site/shop/{n}", get(shop))
        .route("/site/placeholders", get(placeholders))
        .route("/site/covered", get(covered))
}

/// A link ("Next", to `/site/placeholders`) under a clear layer that takes the first
/// click on the page, noting it (`data-hit` on the body), and goes: a user's first click
/// lands on the layer, and so must a recipe's, not follow the link beneath.
async fn covered() -> impl IntoResponse {
    page(
        "Covered",
        r#"<p><a id="next" href="/site/placeholders">Next</a></p>
<div id="cover" style="position: fixed; inset: 0"></div>
<script>
const cover = document.getElementById('cover');
cover.addEventListener('click', () => { document.body.dataset.hit = 'cover'; cover.remove(); });
</script>"#,
    )
}

/// Three "Loading…" rows whose real text the page's load code puts in 10 ms after the
/// load event, which a slow image holds back 200 ms after the HTML is parsed: a list
/// read at load, or on a quiet measured from the parse, is the placeholders.
async fn placeholders() -> impl IntoResponse {
    page(
        "Placeholders",
        r#"<ul id="list"><li class="item">Loading…</li><li class="item">Loading…</li><li class="item">Loading…</li></ul>
<img src="/slow/200" alt=""> <a id="again" href="/site/placeholders">Again</a>
<script>
addEventListener('load', () => setTimeout(() => {
  document.querySelectorAll('li.item').forEach((li, i) => { li.textContent = 'Review ' + (i + 1); });
}, 10));
</script>"#,
    )
}

/// `<shop-grid>` holds, in its open shadow root, twelve `<product-card>`s, each with its
/// name, price and an "Add" button in a shadow root of its own; a card's button adds to
/// the cart (`#cart`, in the document). One card sits in a closed shadow root: no
/// selector reaches it, as in a browser.
async fn shadow() -> impl IntoResponse {
    page(
        "Shadow",
        r#"<p>Cart: <span id="cart">0</span> <span id="last"></span></p><shop-grid></shop-grid>
<script>
customElements.define('product-card', class extends HTMLElement {
  connectedCallback() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({mode: 'open'});
    root.innerHTML = '<div class="card"><h3 class="name"></h3> <span class="price"></span> ' +
      '<button class="add">Add</button></div>';
    root.querySelector('.name').textContent = this.dataset.name;
    root.querySelector('.price').textContent = this.dataset.price;
    root.querySelector('.add').addEventListener('click', () => {
      const cart = document.getElementById('cart');
      cart.textContent = String(Number(cart.textContent) + 1);
      document.getElementById('last').textContent = this.dataset.name;
    });
  }
});
customElements.define('shop-grid', class extends HTMLElement {
  connectedCallback() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({mode: 'open'});
    let html = '<section class="grid">';
    for (let i = 1; i <= 12; i++) {
      html += '<product-card data-name="Card ' + i + '" data-price="' + (i * 1500).toLocaleString('en-US') +
        ' KRW"></product-card>';
    }
    root.innerHTML = html + '</section><div id="hidden"></div>';
    const closed = root.getElementById('hidden').attachShadow({mode: 'closed'});
    closed.innerHTML = '<product-card data-name="Secret" data-price="0 KRW"></product-card>';
  }
});
</script>"#,
    )
}

/// A page with, far down and framed with a border and padding, a same-origin frame of
/// plans whose own frame (loaded a moment later) lists add-ons behind a "Show all" button.
async fn frames() -> impl IntoResponse {
    page(
        "Frames",
        r#"<h1>Pricing</h1><div style="height: 1200px"></div>
<iframe id="plans" src="/site/frames/outer" style="width: 600px; height: 500px; border: 7px solid #444; padding: 13px"></iframe>"#,
    )
}

async fn frames_outer() -> impl IntoResponse {
    page(
        "Plans",
        r#"<table id="prices">
<tr class="plan"><td class="name">Basic</td><td class="amount">9,900</td></tr>
<tr class="plan"><td class="name">Team</td><td class="amount">49,000</td></tr>
<tr class="plan"><td class="name">Business</td><td class="amount">129,000</td></tr>
</table><div style="height: 300px"></div><iframe id="addons" style="width: 400px; height: 300px; border: 3px solid #888"></iframe>
<script>setTimeout(() => { document.getElementById('addons').src = '/site/frames/inner'; }, 300);</script>"#,
    )
}

async fn frames_inner() -> impl IntoResponse {
    page(
        "Add-ons",
        r#"<ul id="addons"></ul><button id="all">Show all</button><script>
const addons = [['Backup', '1,000'], ['Audit log', '2,500'], ['SSO', '5,000'], ['Support', '9,000']];
function show(n) {
  document.getElementById('addons').innerHTML = addons.slice(0, n).map(([name, price]) =>
    '<li class="addon"><span class="name">' + name + '</span> <span class="amount">' + price + '</span></li>').join('');
}
show(2);
document.getElementById('all').addEventListener('click', () => { setTimeout(() => show(4), 100); });
</script>"#,
    )
}

/// Thirty shops, each a link to its page (a few listed twice, as directories do).
async fn directory() -> impl IntoResponse {
    let mut links = String::from(r#"<ul id="shops">"#);
    for n in 1..=30 {
        links.push_str(&format!(
            r#"<li><a class="shop" href="/site/shop/{n}">Shop {n}</a></li>"#
        ));
    }
    links.push_str(r#"</ul><p>Featured: <a class="shop" href="/site/shop/7#top">Shop 7</a></p>"#);
    page("Directory", &links)
}

/// A shop's page: its name, rating and review count (rendered a moment after load).
async fn shop(Path(n): Path<u32>) -> impl IntoResponse {
    page(
        "Shop",
        &format!(
            r#"<h1 class="name">Shop {n}</h1><div id="stats"></div><script>
setTimeout(() => {{ document.getElementById('stats').innerHTML =
  '<span class="rating">{rating}</span> stars, <span class="reviews">{reviews}</span> reviews'; }}, 50);
</script>"#,
            rating = format_args!("{}.{}", 3 + n % 3, n % 10),
            reviews = n * 10
        ),
    )
}

//! The egress proxy reaching targets through the job's own proxy, on real sockets: an
//! HTTP proxy and a SOCKS5 proxy served by the test (`ferry_testkit::proxies`), each
//! reaching a name that resolves nowhere else, so an answer proves the way it took. The
//! policy still decides: a denied target never reaches the proxy (nor a name leading to a
//! denied address, nor, with only what is allowed, a name no allow rule names), nothing
//! does when the proxy's own address is denied, and a name that resolves here is sent to
//! the proxy as the address checked.

use std::{net::SocketAddr, time::Duration};

use ferry_core::{
    Secret,
    proxy::{ProxyKind, Upstream},
};
use ferry_egress::{EgressPolicy, EgressProxy, EgressRule};
use ferry_testkit::proxies::TestProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A name only the test's proxies know.
const NAME: &str = "shop.ferry.invalid";

fn allowing(rules: &[&str]) -> EgressPolicy {
    EgressPolicy {
        allow: rules
            .iter()
            .map(|r| r.parse::<EgressRule>().expect("a rule"))
            .collect(),
        ..EgressPolicy::default()
    }
}

fn upstream(proxy: &TestProxy, kind: ProxyKind, password: Option<&str>) -> Upstream {
    Upstream {
        kind,
        host: proxy.addr.ip().to_string(),
        port: proxy.addr.port(),
        auth: password.map(|p| ("ferry".to_owned(), Secret::new(p))),
    }
}

fn through(egress: &EgressProxy) -> reqwest::Client {
    // Err only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://{}", egress.addr())).expect("a proxy"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}

async fn proxy(kind: ProxyKind, site: SocketAddr) -> TestProxy {
    let routes = [(NAME, site)];
    match kind {
        ProxyKind::Http => TestProxy::http(Some(("ferry", "pw-1")), &routes).await,
        ProxyKind::Socks5 => TestProxy::socks5(Some(("ferry", "pw-1")), &routes).await,
    }
    .expect("a test proxy")
}

/// What the tunnel `CONNECT` opens through `egress` answers to `GET /echo`.
async fn tunnelled(egress: &EgressProxy, target: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(egress.addr())
        .await
        .expect("the egress proxy");
    stream
        .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .expect("CONNECT");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("the answer to CONNECT"));
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if !head.starts_with("HTTP/1.1 200") {
        return head;
    }
    stream
        .write_all(
            format!("GET /echo HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("a request in the tunnel");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .expect("an answer");
    answer
}

#[tokio::test]
async fn both_kinds_of_proxy_carry_requests_and_tunnels_with_their_credentials() {
    let site = ferry_demo_site::spawn().await.expect("the demo site");
    for kind in [ProxyKind::Http, ProxyKind::Socks5] {
        let proxy = proxy(kind, site.addr).await;
        let egress = EgressProxy::start(
            allowing(&["127.0.0.1"]),
            Some(upstream(&proxy, kind, Some("pw-1"))),
        )
        .await
        .expect("the egress proxy");
        let target = format!("{NAME}:{}", site.addr.port());
        let answer = through(&egress)
            .post(format!("http://{target}/echo"))
            .body("hello")
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 200, "{kind:?}");
        let echoed: serde_json::Value = answer.json().await.expect("the echo");
        assert_eq!(echoed["body"], "hello", "{kind:?}: {echoed}");
        let inside = tunnelled(&egress, &target).await;
        assert!(inside.starts_with("HTTP/1.1 200"), "{kind:?}: {inside}");
        let seen = proxy.seen();
        assert_eq!(seen.len(), 2, "{kind:?}: {seen:?}");
        assert!(
            seen.iter().all(|s| s.authorized && s.target == target),
            "{kind:?}: {seen:?}"
        );
        assert!(egress.denials().is_empty());
    }
}

#[tokio::test]
async fn wrong_credentials_are_said_and_the_policy_holds_before_the_proxy() {
    let site = ferry_demo_site::spawn().await.expect("the demo site");
    let target = format!("{NAME}:{}", site.addr.port());
    for kind in [ProxyKind::Http, ProxyKind::Socks5] {
        let proxy = proxy(kind, site.addr).await;
        // Wrong credentials: the tunnel fails and says why.
        let wrong = EgressProxy::start(
            allowing(&["127.0.0.1"]),
            Some(upstream(&proxy, kind, Some("wrong"))),
        )
        .await
        .expect("the egress proxy");
        let inside = tunnelled(&wrong, &target).await;
        assert!(inside.starts_with("HTTP/1.1 502"), "{kind:?}: {inside}");
        let failure = wrong.last_failure().expect("a failure");
        assert!(
            failure.contains(&proxy.addr.to_string()) && failure.contains(NAME),
            "{kind:?}: {failure}"
        );
        if kind == ProxyKind::Http {
            assert!(failure.contains("407"), "{failure}");
            // A plain request gets the proxy's own answer.
            let answer = through(&wrong)
                .get(format!("http://{target}/echo"))
                .send()
                .await
                .expect("an answer");
            assert_eq!(answer.status(), 407);
        }
        assert!(proxy.seen().iter().all(|s| !s.authorized), "{kind:?}");

        // A target the policy denies never reaches the proxy.
        let right = EgressProxy::start(
            allowing(&["127.0.0.1"]),
            Some(upstream(&proxy, kind, Some("pw-1"))),
        )
        .await
        .expect("the egress proxy");
        let before = proxy.seen().len();
        let denied = through(&right)
            .get(format!("http://127.0.0.2:{}/echo", site.addr.port()))
            .send()
            .await
            .expect("an answer");
        assert_eq!(denied.status(), 403, "{kind:?}");
        assert!(
            tunnelled(&right, "169.254.169.254:80")
                .await
                .starts_with("HTTP/1.1 403")
        );
        assert_eq!(proxy.seen().len(), before, "{kind:?}: nothing went on");
        let hosts: Vec<String> = right.denials().into_iter().map(|d| d.host).collect();
        assert_eq!(hosts, ["127.0.0.2", "169.254.169.254"], "{kind:?}");

        // Nor does anything when the proxy's own address is denied.
        let closed = EgressProxy::start(
            EgressPolicy::default(),
            Some(upstream(&proxy, kind, Some("pw-1"))),
        )
        .await
        .expect("the egress proxy");
        let refused = through(&closed)
            .get(format!("http://{target}/echo"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(refused.status(), 403, "{kind:?}");
        assert_eq!(
            closed.denials().pop().map(|d| d.host),
            Some("127.0.0.1".to_owned())
        );
        assert_eq!(proxy.seen().len(), before, "{kind:?}: nothing went on");
    }
}

#[tokio::test]
async fn through_a_proxy_names_are_judged_by_where_they_lead_and_the_address_is_sent() {
    let site = ferry_demo_site::spawn().await.expect("the demo site");
    let port = site.addr.port();
    // The proxy on 127.0.0.3, so a policy can allow it and not 127.0.0.1.
    let proxy = TestProxy::http_on(
        std::net::Ipv4Addr::new(127, 0, 0, 3),
        None,
        &[(NAME, site.addr)],
    )
    .await
    .expect("a test proxy");
    let up = upstream(&proxy, ProxyKind::Http, None);
    let only_proxy = EgressProxy::start(allowing(&["127.0.0.3"]), Some(up.clone()))
        .await
        .expect("the egress proxy");
    // `localhost` leads to 127.0.0.1 (and ::1), which this policy denies.
    let refused = through(&only_proxy)
        .get(format!("http://localhost:{port}/echo"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 403);
    assert!(
        tunnelled(&only_proxy, &format!("localhost:{port}"))
            .await
            .starts_with("HTTP/1.1 403")
    );
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());

    // Allowed, the proxy is sent the address checked, never the name to resolve again.
    let loopback = EgressProxy::start(allowing(&["127.0.0.3", "127.0.0.1"]), Some(up.clone()))
        .await
        .expect("the egress proxy");
    let answer = through(&loopback)
        .get(format!("http://localhost:{port}/echo"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
    let echoed: serde_json::Value = answer.json().await.expect("the echo");
    assert_eq!(
        echoed["headers"]["host"],
        format!("localhost:{port}"),
        "the site sees its name"
    );
    assert!(
        tunnelled(&loopback, &format!("localhost:{port}"))
            .await
            .starts_with("HTTP/1.1 200")
    );
    let targets: Vec<String> = proxy.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        [format!("127.0.0.1:{port}"), format!("127.0.0.1:{port}")]
    );

    // Only what is allowed: a name that resolves nowhere here needs an allow rule.
    let strict = |rules: &[&str]| EgressPolicy {
        allow_public: false,
        ..allowing(rules)
    };
    let closed = EgressProxy::start(strict(&["127.0.0.3"]), Some(up.clone()))
        .await
        .expect("the egress proxy");
    let target = format!("{NAME}:{port}");
    assert!(
        tunnelled(&closed, &target)
            .await
            .starts_with("HTTP/1.1 403")
    );
    assert_eq!(
        closed.denials().pop().map(|d| d.host),
        Some(NAME.to_owned())
    );
    let named = EgressProxy::start(strict(&["127.0.0.3", "ferry.invalid"]), Some(up))
        .await
        .expect("the egress proxy");
    assert!(tunnelled(&named, &target).await.starts_with("HTTP/1.1 200"));
    assert_eq!(proxy.seen().last().map(|s| s.target.clone()), Some(target));
}

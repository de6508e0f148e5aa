//! The egress policy on real sockets: a guarded reqwest client and the browser's proxy
//! against the demo site on 127.0.0.1 and a second one on 127.0.0.2.

use std::{net::Ipv4Addr, sync::Arc, time::Duration};

use ferry_egress::{EgressPolicy, EgressProxy, EgressRule, check_url, denial_of, guarded};

fn allowing(rules: &[&str]) -> EgressPolicy {
    EgressPolicy {
        allow: rules
            .iter()
            .map(|r| r.parse::<EgressRule>().expect("a rule"))
            .collect(),
        ..EgressPolicy::default()
    }
}

fn client(policy: &EgressPolicy) -> reqwest::Client {
    guarded(
        reqwest::Client::builder().timeout(Duration::from_secs(10)),
        Arc::new(policy.clone()),
        true,
    )
    .expect("a client")
}

fn url(text: &str) -> reqwest::Url {
    reqwest::Url::parse(text).expect("a URL")
}

#[tokio::test]
async fn every_spelling_of_loopback_is_refused_before_connecting() {
    let site = ferry_demo_site::spawn().await.expect("the demo site");
    let port = site.addr.port();
    let policy = EgressPolicy::default();
    for host in [
        "127.0.0.1",
        "0.0.0.0",
        "127.1",
        "2130706433",
        "0x7f000001",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "169.254.169.254",
        "10.0.0.1",
    ] {
        let u = url(&format!("http://{host}:{port}/echo"));
        let denied = check_url(&policy, &u).expect_err(host);
        assert!(denied.to_string().contains("denied"), "{host}: {denied}");
    }
    assert!(check_url(&policy, &url("file:///etc/passwd")).is_err());
    assert!(check_url(&policy, &url("ftp://example.com/")).is_err());
    // A name is judged by what it resolves to.
    let error = client(&policy)
        .get(format!("http://localhost:{port}/echo"))
        .send()
        .await
        .expect_err("localhost is loopback");
    let denied = denial_of(&error).expect("refused by the policy");
    assert_eq!(denied.host, "localhost");
    assert!(denied.reason.contains("loopback"), "{denied}");
}

#[tokio::test]
async fn an_allowed_host_is_reached_and_a_redirect_to_a_denied_one_is_refused() {
    let site = ferry_demo_site::spawn().await.expect("the demo site");
    let other = ferry_demo_site::spawn_on(Ipv4Addr::new(127, 0, 0, 2))
        .await
        .expect("a second site");
    let policy = allowing(&["127.0.0.1"]);
    let http = client(&policy);
    let ok = http
        .get(site.url("/echo"))
        .send()
        .await
        .expect("allowed by address");
    assert_eq!(ok.status(), 200);
    let hop = format!("{}?to={}", site.url("/redirect"), other.url("/echo"));
    check_url(&policy, &url(&hop)).expect("the first hop is allowed");
    let error = http.get(&hop).send().await.expect_err("the second hop");
    let denied = denial_of(&error).expect("refused by the policy");
    assert_eq!(denied.host, "127.0.0.2");
    // The operator's switch allows both.
    let open = client(&EgressPolicy::allowing_private());
    let followed = open.get(&hop).send().await.expect("allowed");
    assert_eq!(followed.status(), 200);
}

#[tokio::test]
async fn the_proxy_forwards_what_is_allowed_and_refuses_the_rest() {
    let site = ferry_demo_site::spawn().await.expect("the demo site");
    let other = ferry_demo_site::spawn_on(Ipv4Addr::new(127, 0, 0, 2))
        .await
        .expect("a second site");
    let proxy = EgressProxy::start(allowing(&["127.0.0.1"]), None)
        .await
        .expect("the proxy");
    let through = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://{}", proxy.addr())).expect("a proxy"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let ok = through
        .post(site.url("/echo"))
        .body("hello")
        .send()
        .await
        .expect("forwarded");
    assert_eq!(ok.status(), 200);
    let echoed: serde_json::Value = ok.json().await.expect("the echo");
    assert_eq!(echoed["body"], "hello", "{echoed}");
    let refused = through
        .get(other.url("/echo"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 403);
    // Nothing listens on this port of 127.0.0.3: the same answer.
    let nobody = through
        .get("http://127.0.0.3:9/")
        .send()
        .await
        .expect("an answer");
    assert_eq!(nobody.status(), 403);
    let denials = proxy.denials();
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert_eq!(denials[0].host, "127.0.0.2");
    assert_eq!(proxy.denial_count(), 2);
}

//! The dashboard's egress and secrets pages, driven by a real headless Chromium against
//! the real server: an admin saves a secret (whose value no page shows again), deletes
//! another and sets the tenant's rules and proxy from the egress page, a bad rule named;
//! a viewer sees both pages without their forms and the server refuses their post anyway;
//! a user of another tenant sees none of it.

use ferry_core::Role;
use ferry_testkit::TestServer;

use crate::dashboard::{Chrome, click, eval, log_in, log_out, snapshot, type_into, until, user};
use crate::identity::{admin_of, tenant};

const VALUE: &str = "proxy-pw-41f0c9";
const PROXY: &str = "http://acme:{{secret.PROXY_PW}}@proxy.example:8080";

#[tokio::test]
async fn admins_set_egress_and_keep_secrets_from_their_pages_and_no_page_shows_a_value() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    let beta = tenant(&server, "beta").await;
    user(&server, &acme, "ada@acme.test", Role::Admin).await;
    user(&server, &acme, "vic@acme.test", Role::Viewer).await;
    user(&server, &acme, "ed@acme.test", Role::Editor).await;
    user(&server, &beta, "bea@beta.test", Role::Admin).await;
    let chrome = Chrome::launch().await;
    let page = chrome
        .browser
        .new_page(format!("{}/secrets", server.url))
        .await
        .expect("a page");
    log_in(&page, "ada@acme.test").await;
    for (name, value) in [("PROXY_PW", VALUE), ("SCRATCH", "scratch-value-1")] {
        until(&page, "the secret form", |h| h.contains("Save a secret")).await;
        type_into(&page, "input[name=name]", name).await;
        type_into(&page, "input[name=value]", value).await;
        type_into(&page, "textarea[name=domains]", "proxy.example").await;
        click(&page, "form.settings button[type=submit]").await;
        until(&page, "the secret listed", |h| {
            h.contains(&format!("<code>{name}</code>"))
        })
        .await;
    }
    click(&page, "form[action=\"/secrets/SCRATCH/delete\"] button").await;
    // The list once the page after the delete is in (not the document between the two).
    let listed = until(&page, "one secret left", |h| {
        !h.contains("SCRATCH") && h.contains("<code>PROXY_PW</code>")
    })
    .await;
    assert!(listed.contains("PROXY_PW") && listed.contains("proxy.example"));
    assert!(!listed.contains(VALUE), "a value is never shown");
    snapshot(&page, "secrets").await;
    let vault = server
        .queue
        .vault()
        .list(&admin_of(&acme))
        .await
        .expect("the vault");
    assert_eq!(
        vault.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["PROXY_PW"]
    );

    page.goto(format!("{}/egress", server.url))
        .await
        .expect("goto");
    until(&page, "the rules form", |h| h.contains("Save the rules")).await;
    type_into(&page, "textarea[name=allow]", "not a rule!").await;
    click(&page, "form.settings button[type=submit]").await;
    until(&page, "the bad rule named", |h| h.contains("allow[0]")).await;
    page.goto(format!("{}/egress", server.url))
        .await
        .expect("goto");
    until(&page, "the rules form", |h| h.contains("Save the rules")).await;
    type_into(&page, "textarea[name=allow]", "intranet.example").await;
    type_into(&page, "input[name=proxy]", PROXY).await;
    click(&page, "form.settings button[type=submit]").await;
    let saved = until(&page, "the rules in effect", |h| {
        h.contains("<code>intranet.example</code>") && h.contains("proxy.example:8080")
    })
    .await;
    assert!(saved.contains("Save the rules"), "the form is back");
    snapshot(&page, "egress").await;
    let (own, _) = server
        .queue
        .egress_view(&acme)
        .await
        .expect("the tenant's rules");
    assert_eq!(own.allow.len(), 1);
    assert_eq!(own.proxy.map(|p| p.to_string()), Some(PROXY.to_owned()));

    // A viewer reads both pages, without their forms; the server refuses a post anyway.
    log_out(&page).await;
    log_in(&page, "vic@acme.test").await;
    page.goto(format!("{}/egress", server.url))
        .await
        .expect("goto");
    let read = until(&page, "the rules", |h| h.contains("intranet.example")).await;
    assert!(!read.contains("Save the rules"), "{read}");
    page.goto(format!("{}/secrets", server.url))
        .await
        .expect("goto");
    let read = until(&page, "the secrets", |h| h.contains("PROXY_PW")).await;
    assert!(!read.contains("Save a secret") && !read.contains(">Delete<"));
    let status = eval(
        &page,
        "fetch('/secrets', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, \
         body: 'csrf=' + encodeURIComponent(document.querySelector('input[name=csrf]').value) \
         + '&name=SNEAKY&value=x&domains=evil.example'}).then(r => r.status)",
    )
    .await;
    assert_eq!(status, 403);

    // An editor keeps secrets but does not change the rules; a form without the
    // session's CSRF token changes nothing for anyone.
    log_out(&page).await;
    log_in(&page, "ed@acme.test").await;
    page.goto(format!("{}/egress", server.url))
        .await
        .expect("goto");
    let read = until(&page, "the rules", |h| h.contains("intranet.example")).await;
    assert!(!read.contains("Save the rules"), "{read}");
    let post = |path: &str, csrf: &str, rest: &str| {
        format!(
            "fetch('{path}', {{method: 'POST', headers: {{'content-type': 'application/x-www-form-urlencoded'}}, \
             body: 'csrf=' + encodeURIComponent({csrf}) + '&{rest}'}}).then(r => r.status)"
        )
    };
    let token = "document.querySelector('input[name=csrf]').value";
    let status = eval(&page, &post("/egress", token, "allow=evil.example")).await;
    assert_eq!(status, 403, "an editor may not change the rules");
    let status = eval(
        &page,
        &post(
            "/secrets",
            "'forged'",
            "name=FORGED&value=x&domains=evil.example",
        ),
    )
    .await;
    assert_eq!(status, 403, "a forged form");

    // Another tenant's admin sees none of it.
    log_out(&page).await;
    log_in(&page, "bea@beta.test").await;
    for path in ["/egress", "/secrets"] {
        page.goto(format!("{}{path}", server.url))
            .await
            .expect("goto");
        let html = until(&page, path, |h| h.contains("Log out")).await;
        assert!(
            !html.contains("PROXY_PW") && !html.contains("intranet.example"),
            "{path}: {html}"
        );
    }
    assert_eq!(
        server
            .queue
            .vault()
            .list(&admin_of(&acme))
            .await
            .expect("the vault")
            .len(),
        1,
        "the viewer's and the forged posts saved nothing"
    );
    let (own, _) = server
        .queue
        .egress_view(&acme)
        .await
        .expect("the tenant's rules");
    assert_eq!(
        own.allow
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["intranet.example"],
        "the editor's post changed nothing"
    );
}

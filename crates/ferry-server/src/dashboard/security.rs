//! Where the tenant's jobs may connect and what they may send: the egress page (the
//! tenant's rules, its proxy and what its jobs are held to with the operator's; admins
//! change them, audited as `tenant.egress`) and the secrets page (the vault's names and
//! domains, never a value; editors and admins save and delete, audited as through the
//! API). Both act through the same services as `PUT /v1/tenant/egress` and `/v1/secrets`.

use axum::{
    Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use ferry_core::{
    FieldError, Role, Secret,
    egress::{EgressPolicy, EgressRule},
    vault::SecretSpec,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::jobs::{may_change, time};
use super::layout::{error_page, page};
use super::session::PageUser;
use crate::{app::AppError, http::AppState};

fn rules(list: &[EgressRule]) -> Markup {
    html! {
        @if list.is_empty() { "—" } @else {
            @for (i, rule) in list.iter().enumerate() {
                @if i > 0 { ", " }
                code { (rule) }
            }
        }
    }
}

fn policy_table(p: &EgressPolicy) -> Markup {
    html! {
        dl.facts {
            dt { "Allowed even when internal" } dd { (rules(&p.allow)) }
            dt { "Never reached" } dd { (rules(&p.deny)) }
            dt { "Public addresses" } dd {
                @if p.allow_public { "allowed" } @else { "only what is allowed above" }
            }
            dt { "Internal addresses" } dd {
                @if p.allow_private { "allowed (the operator's switch)" } @else { "denied unless allowed above" }
            }
            dt { "Proxy" } dd {
                @match &p.proxy { Some(proxy) => { code { (proxy) } } None => { "none: jobs connect directly" } }
            }
            dt { "Rate limits per domain" } dd {
                @if p.rate_limits.is_empty() { "—" } @else {
                    @for r in &p.rate_limits {
                        div { code { (r.domain) } " "
                            @if let Some(ms) = r.interval_ms { "one start per " (ms) " ms " }
                            @if let (Some(max), Some(per)) = (r.max, r.per_ms) { (max) " starts per " (per) " ms" }
                        }
                    }
                }
            }
        }
    }
}

fn lines(list: &[EgressRule]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn egress(State(queue): State<AppState>, user: PageUser) -> Response {
    let (own, effective) = match queue.egress_view(&user.principal.tenant).await {
        Ok(view) => view,
        Err(e) => return error_page(&e).into_response(),
    };
    let admin = user.principal.role == Role::Admin;
    page(
        "Egress",
        Some(&user),
        html! {
            h1 { "Egress" }
            p { "Where this tenant's jobs and webhooks may connect. Internal addresses (loopback, private networks, cloud metadata) are refused unless allowed; see the egress guide." }
            h2 { "In effect" }
            p.muted { "The tenant's rules with the operator's: what every job is held to." }
            (policy_table(&effective))
            h2 { "The tenant's own rules" }
            @if admin {
                form.settings method="post" action="/egress" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label { "Allowed even when internal (one domain, address or CIDR block per line)"
                        textarea name="allow" rows="4" { (lines(&own.allow)) } }
                    label { "Never reached (one per line)"
                        textarea name="deny" rows="3" { (lines(&own.deny)) } }
                    label.check {
                        input type="checkbox" name="only_allowed" value="on" checked[!own.allow_public];
                        " Only what is allowed above (no other public address)"
                    }
                    label { "Proxy (http://user:{{secret.NAME}}@host:port or socks5://host:port; empty: none)"
                        input type="text" name="proxy" value=(own.proxy.as_ref().map(ToString::to_string).unwrap_or_default());
                    }
                    p.muted { "Rate limits per domain are kept as they are (ferry egress set --rate DOMAIN=MS)." }
                    button type="submit" { "Save the rules" }
                }
            } @else {
                (policy_table(&own))
                p.muted { "Only the tenant's admins change these." }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct EgressForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    allow: String,
    #[serde(default)]
    deny: String,
    #[serde(default)]
    only_allowed: Option<String>,
    #[serde(default)]
    proxy: String,
}

/// Each line of `text` as a rule, or the lines that are not one, named under `field`.
fn parse_rules(field: &str, text: &str, errors: &mut Vec<FieldError>) -> Vec<EgressRule> {
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        match line.parse() {
            Ok(rule) => out.push(rule),
            Err(e) => errors.push(FieldError::new(format!("{field}[{i}]"), format!("{e}"))),
        }
    }
    out
}

pub async fn save_egress(
    State(queue): State<AppState>,
    user: PageUser,
    Form(form): Form<EgressForm>,
) -> Response {
    if let Some(refused) = user.refusal(&queue, &form.csrf, "change the egress rules") {
        return refused;
    }
    if user.principal.role != Role::Admin {
        return error_page(&AppError::Forbidden(
            "only the tenant's admins change its egress rules".into(),
        ))
        .into_response();
    }
    let (own, _) = match queue.egress_view(&user.principal.tenant).await {
        Ok(view) => view,
        Err(e) => return error_page(&e).into_response(),
    };
    let mut errors = Vec::new();
    let allow = parse_rules("allow", &form.allow, &mut errors);
    let deny = parse_rules("deny", &form.deny, &mut errors);
    let proxy = match form.proxy.trim() {
        "" => None,
        text => match text.parse() {
            Ok(proxy) => Some(proxy),
            Err(e) => {
                errors.push(FieldError::new("proxy", format!("{e}")));
                None
            }
        },
    };
    if !errors.is_empty() {
        return error_page(&AppError::Invalid(errors)).into_response();
    }
    let policy = EgressPolicy {
        allow,
        deny,
        allow_public: form.only_allowed.is_none(),
        proxy,
        ..own
    };
    match queue.set_egress(&user.principal, policy).await {
        Ok(_) => Redirect::to("/egress").into_response(),
        Err(e) => error_page(&e).into_response(),
    }
}

pub async fn secrets(State(queue): State<AppState>, user: PageUser) -> Response {
    let secrets = match queue.vault().list(&user.principal).await {
        Ok(secrets) => secrets,
        Err(e) => return error_page(&e).into_response(),
    };
    let editor = may_change(&user);
    page(
        "Secrets",
        Some(&user),
        html! {
            h1 { "Secrets" }
            p { "The tenant's vault: recipes and requests use a secret as " code { "{{secret.NAME}}" } "; a worker gets it only for a job that names it, and sends it only to the domains it is bound to. Values are sealed and never shown." }
            @if secrets.is_empty() {
                p.empty { "No secrets yet." }
            } @else {
                table.jobs.secrets {
                    thead { tr { th { "Name" } th { "May be sent to" } th { "Changed" } th {} } }
                    tbody {
                        @for s in &secrets {
                            tr {
                                td { code { (s.name) } }
                                td { (rules(&s.domains)) }
                                td { (time(s.updated_at)) }
                                td {
                                    @if editor {
                                        form.inline method="post" action={ "/secrets/" (s.name) "/delete" } {
                                            input type="hidden" name="csrf" value=(user.csrf);
                                            button type="submit" { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if editor {
                h2 { "Save a secret" }
                form.settings method="post" action="/secrets" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label { "Name (letters, digits and _; an existing one is replaced)"
                        input type="text" name="name" required pattern="[A-Za-z0-9_]{1,64}" autocomplete="off"; }
                    label { "Value"
                        input type="password" name="value" required autocomplete="new-password"; }
                    label { "May be sent to (domains or addresses, one per line)"
                        textarea name="domains" rows="2" required {} }
                    button type="submit" { "Save" }
                }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    domains: String,
}

pub async fn save_secret(
    State(queue): State<AppState>,
    user: PageUser,
    Form(form): Form<SecretForm>,
) -> Response {
    if let Some(refused) = user.refusal(&queue, &form.csrf, "save secrets") {
        return refused;
    }
    let spec = SecretSpec {
        value: Secret::new(form.value),
        domains: form
            .domains
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    match queue
        .vault()
        .put(&user.principal, form.name.trim(), spec)
        .await
    {
        Ok(_) => Redirect::to("/secrets").into_response(),
        Err(e) => error_page(&e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct Action {
    #[serde(default)]
    csrf: String,
}

pub async fn delete_secret(
    State(queue): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<Action>,
) -> Response {
    if let Some(refused) = user.refusal(&queue, &form.csrf, "delete secrets") {
        return refused;
    }
    match queue.vault().delete(&user.principal, &name).await {
        Ok(()) => Redirect::to("/secrets").into_response(),
        Err(e) => error_page(&e).into_response(),
    }
}

//! Logging in and out: a form posting name and password (and the tenant, for a user of
//! several) that sets the session cookie and goes on to the page asked for.

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use ferry_core::{Secret, identity::LoginRequest};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::page;
use super::session::PageUser;
use crate::app::{AppError, SESSION_TTL, session_cookie_value};
use crate::http::{AppState, ClientAddr, session_cookie};

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Where to go after logging in: a path of this site only (never another origin).
fn next_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/jobs",
    }
}

fn login_page(next: &str, name: &str, error: Option<&str>) -> Markup {
    page(
        "Log in",
        None,
        html! {
            section.login {
                h1 { "Log in" }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label { "Name" input type="text" name="name" value=(name) autocomplete="username" required autofocus; }
                    label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                    label { "Tenant " small { "(if you belong to several)" } input type="text" name="tenant"; }
                    button type="submit" { "Log in" }
                }
            }
        },
    )
}

pub async fn form(Query(q): Query<Next>) -> Markup {
    login_page(next_path(q.next.as_deref()), "", None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    next: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pub async fn submit(
    State(queue): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = next_path(Some(&form.next)).to_owned();
    let refuse = |status: StatusCode, message: &str| {
        (status, login_page(&next, &form.name, Some(message))).into_response()
    };
    if queue.auth_failures().blocked(addr).is_some() {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong passwords from this address; wait a minute.",
        );
    }
    let tenant = form.tenant.trim();
    let req = LoginRequest {
        name: form.name.clone(),
        password: Secret::new(form.password.clone()),
        tenant: (!tenant.is_empty()).then(|| tenant.to_owned()),
    };
    match queue.users().login(req).await {
        Ok((token, _)) => {
            let cookie = session_cookie_value(
                token.expose(),
                SESSION_TTL.num_seconds(),
                queue.config().secure_cookies,
            );
            let mut response = Redirect::to(&next).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(AppError::Unauthorized(message)) => {
            queue.auth_failures().record(addr);
            refuse(StatusCode::UNAUTHORIZED, &capitalized(message))
        }
        Err(e @ (AppError::Forbidden(_) | AppError::Invalid(_))) => {
            refuse(StatusCode::FORBIDDEN, &e.to_string())
        }
        Err(e) => super::layout::error_page(&e).into_response(),
    }
}

fn capitalized(message: &str) -> String {
    let mut chars = message.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (a form with its CSRF token) and clears the cookie.
pub async fn logout(
    State(queue): State<AppState>,
    user: PageUser,
    headers: axum::http::HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&queue, &form.csrf) {
        return super::layout::error_page(&AppError::Csrf).into_response();
    }
    if let Some(token) = session_cookie(&headers)
        && let Err(e) = queue.users().logout(&token).await
    {
        return super::layout::error_page(&e).into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    let cleared = session_cookie_value("", 0, queue.config().secure_cookies);
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_gone_on_to() {
        assert_eq!(super::next_path(Some("/jobs/1?x=2")), "/jobs/1?x=2");
        for outside in ["https://evil.test/", "//evil.test/", "/\\evil.test", "jobs"] {
            assert_eq!(super::next_path(Some(outside)), "/jobs", "{outside}");
        }
        assert_eq!(super::next_path(None), "/jobs");
    }
}

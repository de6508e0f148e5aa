//! The page shell every dashboard page shares: head, navigation with the user, tenant and
//! a logout form, the content; and the error page.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use super::session::PageUser;
use crate::app::AppError;

/// A whole page.
pub fn page(title: &str, user: Option<&PageUser>, content: Markup) -> Markup {
    live_page(title, user, None, content)
}

/// A whole page that redraws itself when the event stream at `live` reports a change.
pub fn live_page(
    title: &str,
    user: Option<&PageUser>,
    live: Option<&str>,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Ferry" }
                link rel="stylesheet" href="/assets/ferry.css";
                // Live pages redraw themselves; the recipe builder checks as it is typed.
                script src="/assets/ferry.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/overview" { "Ferry" }
                    @if let Some(user) = user {
                        nav {
                            a href="/overview" { "Overview" } " "
                            a href="/jobs" { "Jobs" } " "
                            a href="/dead" { "Dead letters" } " "
                            a href="/workers" { "Workers" } " "
                            a href="/batches" { "Batches" } " "
                            a href="/schedules" { "Schedules" } " "
                            a href="/recipes" { "Recipes" } " "
                            a href="/datasets" { "Datasets" } " "
                            a href="/webhooks" { "Webhooks" } " "
                            a href="/sessions" { "Sessions" } " "
                            a href="/secrets" { "Secrets" } " "
                            a href="/egress" { "Egress" }
                        }
                        span.who {
                            (user.name()) " · " (user.principal.tenant.as_str()) " · "
                            (user.principal.role.as_str())
                        }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main data-live=[live] { (content) }
            }
        }
    }
}

/// The page for an error a page's action met.
pub fn error_page(e: &AppError) -> (StatusCode, Markup) {
    let (status, message) = match e {
        AppError::NotFound(what) => (StatusCode::NOT_FOUND, format!("No such {what}.")),
        AppError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
        AppError::Csrf => (
            StatusCode::FORBIDDEN,
            "This form is out of date; go back, reload the page and try again.".to_owned(),
        ),
        AppError::Invalid(_) | AppError::Conflict(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        AppError::Store(ferry_store::StoreError::InvalidState { op, status }) => (
            StatusCode::CONFLICT,
            format!("Cannot {op} a job that is {status}."),
        ),
        AppError::Store(ferry_store::StoreError::NotFound(_)) => {
            (StatusCode::NOT_FOUND, "No such job.".to_owned())
        }
        other => {
            tracing::error!(error = %other, "a dashboard page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong; the server's log has the details.".to_owned(),
            )
        }
    };
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        page(
            title,
            None,
            html! {
                h1 { (title) }
                p.error role="alert" { (message) }
                p { a href="/jobs" { "Back to the jobs" } }
            },
        ),
    )
}

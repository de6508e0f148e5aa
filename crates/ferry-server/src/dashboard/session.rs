//! The page's user: the login cookie's session as a [`Principal`], with the session's CSRF
//! token for the forms the page renders. Without a live session the browser is sent to
//! the login page (and back afterwards).

use axum::{
    extract::FromRequestParts,
    http::request::Parts,
    response::{IntoResponse, Redirect, Response},
};
use ferry_core::Secret;

use crate::app::{AppError, Principal};
use crate::http::{AppState, session_cookie};

/// The logged-in user of a page.
#[derive(Debug, Clone)]
pub struct PageUser {
    pub principal: Principal,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    token: String,
}

impl PageUser {
    /// The name the pages show (`ana@example.com`).
    pub fn name(&self) -> &str {
        self.principal
            .actor
            .strip_prefix("user:")
            .unwrap_or(&self.principal.actor)
    }

    /// Whether `given` (a form's `csrf` field) is this session's CSRF token.
    pub fn csrf_ok(&self, queue: &AppState, given: &str) -> bool {
        queue.users().csrf_matches(&self.token, given)
    }

    /// Checks a form that changes something: its CSRF token (`given`), and that the user
    /// is an editor or admin. `Some`: the error page to answer instead, saying the user may
    /// not `act` (`retry jobs`, `change schedules` …).
    pub fn refusal(&self, queue: &AppState, given: &str, act: &str) -> Option<Response> {
        if !self.csrf_ok(queue, given) {
            return Some(super::layout::error_page(&AppError::Csrf).into_response());
        }
        if !super::jobs::may_change(self) {
            return Some(
                super::layout::error_page(&AppError::Forbidden(format!(
                    "a {} may not {act}; only editors and admins may",
                    self.principal.role
                )))
                .into_response(),
            );
        }
        None
    }
}

/// Why a page has no user: the browser goes to log in, or the database failed.
pub enum NoUser {
    LogIn(String),
    Failed(AppError),
}

impl IntoResponse for NoUser {
    fn into_response(self) -> Response {
        match self {
            NoUser::LogIn(back) => {
                let to = form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &back)
                    .finish();
                Redirect::to(&format!("/login?{to}")).into_response()
            }
            NoUser::Failed(e) => super::layout::error_page(&e).into_response(),
        }
    }
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = NoUser;

    async fn from_request_parts(parts: &mut Parts, queue: &AppState) -> Result<Self, NoUser> {
        let back = parts
            .uri
            .path_and_query()
            .map_or("/jobs".to_owned(), |p| p.as_str().to_owned());
        let Some(token) = session_cookie(&parts.headers) else {
            return Err(NoUser::LogIn(back));
        };
        match queue.users().session(&token).await {
            Ok(Some(principal)) => Ok(PageUser {
                csrf: queue.users().csrf_token(&Secret::new(token.clone())),
                principal,
                token,
            }),
            Ok(None) | Err(AppError::Unauthorized(_)) => Err(NoUser::LogIn(back)),
            Err(e) => Err(NoUser::Failed(e)),
        }
    }
}

//! Users over HTTP: logging in and out (`POST /v1/auth/login` answers the session cookie
//! and its CSRF token), who a credential is (`GET /v1/auth/me`), and a tenant's users for
//! its admins (`GET/POST /v1/users`, `DELETE /v1/users/{name}`). `app::Users` keeps the
//! rules.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ferry_core::identity::{LoginRequest, UserCreateRequest, UserList, WhoAmI};

use super::auth::{session_cookie, slowed};
use super::routes::{Access, Routes};
use super::{ApiError, AppState, ClientAddr, Json, Principal};
use crate::app::{AppError, SESSION_TTL, session_cookie_value};

pub fn routes(r: Routes) -> Routes {
    r.post("/v1/auth/login", Access::Public, login, |op| {
        op.id("login")
            .summary("Log in")
            .description(
                "A dashboard user's name and password give a session cookie (`HttpOnly`, \
                 `SameSite=Strict`) and the CSRF token its changes must carry.",
            )
            .response_with::<200, Json<ferry_core::identity::LoginInfo>, _>(|r| {
                r.description("Logged in; the cookie is in `Set-Cookie`.")
            })
            .response_with::<401, Json<ferry_core::api::ApiErrorBody>, _>(|r| {
                r.description("Wrong name or password (`UNAUTHORIZED`).")
            })
            .response_with::<429, Json<ferry_core::api::ApiErrorBody>, _>(|r| {
                r.description("Too many wrong tries from this address (`TOO_MANY_AUTH_FAILURES`).")
            })
    })
    .post("/v1/auth/logout", Access::Public, logout, |op| {
        op.id("logout")
            .summary("Log out")
            .description("Ends the cookie's session, if any, and clears the cookie.")
            .response_with::<204, (), _>(|r| r.description("Logged out."))
    })
    .get("/v1/auth/me", Access::Read, me, |op| {
        op.id("whoAmI")
            .summary("Who is calling: tenant, role, name")
    })
    .get("/v1/users", Access::Admin, list, |op| {
        op.id("listUsers").summary("Dashboard users")
    })
    .post("/v1/users", Access::Admin, create, |op| {
        op.id("createUser")
            .summary("Add a dashboard user")
            .response_with::<201, Json<ferry_core::identity::UserInfo>, _>(|r| {
                r.description("Added.")
            })
    })
    .delete("/v1/users/{name}", Access::Admin, remove, |op| {
        op.id("deleteUser")
            .summary("Remove a dashboard user")
            .response_with::<204, (), _>(|r| r.description("Removed, with their sessions."))
    })
}

/// The `Set-Cookie` value for `token` (empty and expired to log out).
fn cookie(queue: &AppState, token: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&session_cookie_value(
        token,
        max_age,
        queue.config().secure_cookies,
    ))
    .map_err(|e| ApiError::from(AppError::Internal(format!("a cookie: {e}"))))
}

async fn login(
    State(queue): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    if let Some(slowed) = slowed(&queue, addr) {
        return Err(slowed);
    }
    let (token, info) = match queue.users().login(req).await {
        Ok(done) => done,
        Err(e) => {
            if matches!(e, AppError::Unauthorized(_)) {
                queue.auth_failures().record(addr);
            }
            return Err(e.into());
        }
    };
    let set = cookie(&queue, token.expose(), SESSION_TTL.num_seconds())?;
    let mut response = Json(info).into_response();
    response.headers_mut().insert(header::SET_COOKIE, set);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Ends the cookie's session (if any) and clears the cookie.
async fn logout(State(queue): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        queue.users().logout(&token).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&queue, "", 0)?);
    Ok(response)
}

async fn me(principal: Principal) -> Json<WhoAmI> {
    Json(WhoAmI {
        actor: principal.actor.clone(),
        tenant: principal.tenant.to_string(),
        role: principal.role,
        kinds: principal.kinds.as_ref().map(|k| k.to_vec()),
    })
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<UserList>, ApiError> {
    Ok(Json(UserList {
        users: queue.users().list(&principal.tenant).await?,
    }))
}

async fn create(
    State(queue): State<AppState>,
    principal: Principal,
    Json(req): Json<UserCreateRequest>,
) -> Result<Response, ApiError> {
    let made = queue.users().create(&principal, req).await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

async fn remove(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    queue.users().remove(&principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! The route table: every route of the API with the access it needs, declared where the
//! route is. The router is built from it (each route behind [`super::auth::gate`] with its
//! access), and it is public, so tests (the isolation matrix) and the API description walk
//! exactly the routes that are served.

use aide::{
    OperationInput, OperationOutput,
    axum::{ApiRouter, routing::ApiMethodRouter},
    openapi::OpenApi,
    operation::OperationHandler,
    transform::TransformOperation,
};
use axum::{Router, handler::Handler, http::Method, middleware};

use super::{AppState, Role, auth};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone, without credentials (`/healthz`).
    Public,
    /// Reads: viewers, editors and admins of the tenant.
    Read,
    /// Changes: editors and admins.
    Write,
    /// The tenant's keys and settings: admins.
    Admin,
    /// The worker protocol: worker tokens.
    Worker,
}

impl Access {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public => true,
            Access::Read => matches!(role, Role::Viewer | Role::Editor | Role::Admin),
            Access::Write => matches!(role, Role::Editor | Role::Admin),
            Access::Admin => role == Role::Admin,
            Access::Worker => role == Role::Worker,
        }
    }

    /// Who may, in words (for a `403`).
    pub fn who(self) -> &'static str {
        match self {
            Access::Public => "anyone",
            Access::Read => "viewer, editor and admin keys",
            Access::Write => "editor and admin keys",
            Access::Admin => "admin keys",
            Access::Worker => "worker tokens",
        }
    }
}

/// One route: method, path template (as the router has it) and access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// What a route's declaration says of it in the API document (operation id, summary,
/// responses the handler's types do not show).
pub type Doc = fn(TransformOperation<'_>) -> TransformOperation<'_>;

/// Routes being declared; see the module doc.
#[derive(Default)]
pub struct Routes {
    entries: Vec<(RouteSpec, ApiMethodRouter<AppState>)>,
}

macro_rules! method {
    ($($name:ident => $with:ident, $method:ident),*) => {$(
        pub fn $name<H, I, O, T>(self, path: &'static str, access: Access, handler: H, doc: Doc) -> Self
        where
            H: Handler<T, AppState> + OperationHandler<I, O>,
            I: OperationInput,
            O: OperationOutput,
            T: 'static,
        {
            let route = aide::axum::routing::$with(handler, |op| {
                super::openapi::describe(doc(op), path, access)
            });
            self.add(Method::$method, path, access, route)
        }
    )*};
}

impl Routes {
    method!(
        get => get_with, GET,
        post => post_with, POST,
        put => put_with, PUT,
        delete => delete_with, DELETE
    );

    /// A route built by hand (e.g. with its own layers); `method` must be the one `route`
    /// serves, and `route` must describe itself (see [`super::openapi::describe`]).
    pub fn add(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        route: ApiMethodRouter<AppState>,
    ) -> Self {
        self.entries.push((
            RouteSpec {
                method,
                path,
                access,
            },
            route,
        ));
        self
    }

    pub fn specs(&self) -> Vec<RouteSpec> {
        self.entries.iter().map(|(spec, _)| spec.clone()).collect()
    }

    /// The router: each route behind the gate that checks its access.
    pub fn into_router(self, queue: &AppState) -> Router<AppState> {
        let router = self
            .entries
            .into_iter()
            .fold(ApiRouter::new(), |router, (spec, route)| {
                let route = match spec.access {
                    Access::Public => route,
                    access => route.route_layer(middleware::from_fn_with_state(
                        (queue.clone(), access),
                        auth::gate,
                    )),
                };
                router.api_route(spec.path, route)
            })
            .into();
        // The routes' descriptions went into this thread's generator; the router needs none.
        aide::generate::reset_context();
        router
    }

    /// The API document: exactly these routes, each as its declaration describes it.
    pub fn into_document(self) -> OpenApi {
        let router = self
            .entries
            .into_iter()
            .fold(ApiRouter::<AppState>::new(), |router, (spec, route)| {
                router.api_route(spec.path, route)
            });
        let mut api = OpenApi::default();
        let _ = router.finish_api_with(&mut api, super::openapi::document);
        api
    }
}

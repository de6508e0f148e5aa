//! The route table: every route of the API with the access it needs, declared where the
//! route is. The router is built from it (each route behind [`super::auth::gate`] with its
//! access), and it is public, so tests (the isolation matrix) and the API description walk
//! exactly the routes that are served.

use axum::{
    Router,
    handler::Handler,
    http::Method,
    middleware,
    routing::{self, MethodRouter},
};

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

/// Routes being declared; see the module doc.
#[derive(Default)]
pub struct Routes {
    entries: Vec<(RouteSpec, MethodRouter<AppState>)>,
}

macro_rules! method {
    ($($name:ident => $method:ident),*) => {$(
        pub fn $name<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add(Method::$method, path, access, routing::$name(handler))
        }
    )*};
}

impl Routes {
    method!(get => GET, post => POST, put => PUT, delete => DELETE);

    /// A route built by hand (e.g. with its own layers); `method` must be the one `route`
    /// serves.
    pub fn add(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        route: MethodRouter<AppState>,
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
        self.entries
            .into_iter()
            .fold(Router::new(), |router, (spec, route)| {
                let route = match spec.access {
                    Access::Public => route,
                    access => route.route_layer(middleware::from_fn_with_state(
                        (queue.clone(), access),
                        auth::gate,
                    )),
                };
                router.route(spec.path, route)
            })
    }
}

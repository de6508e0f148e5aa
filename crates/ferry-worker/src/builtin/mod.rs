//! Handlers every worker has: `ferry.noop` (benchmarks, smoke tests) and
//! `http.request` (call an external API or a sidecar).

mod http;
mod noop;

pub use http::{HttpRequest, HttpRequestHandler};
pub use noop::Noop;

use crate::Registry;

/// A registry with the built-in handlers.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register("ferry.noop", Noop)
        .expect("valid pattern");
    registry
        .register(
            "http.request",
            HttpRequestHandler::new().expect("http client"),
        )
        .expect("valid pattern");
    registry
}

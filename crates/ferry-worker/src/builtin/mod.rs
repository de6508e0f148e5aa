//! Handlers every worker has: `ferry.noop` (benchmarks, smoke tests) and
//! `http.request` (call an external API or a sidecar).

mod http;
mod noop;

pub use http::{HttpRequest, HttpRequestHandler, MAX_BODY as HTTP_MAX_BODY};
pub use noop::Noop;

use crate::Registry;

/// A registry with the built-in handlers. Fails only when the HTTP client of
/// `http.request` cannot be built (its TLS setup failed).
pub fn registry() -> Result<Registry, reqwest::Error> {
    let mut registry = Registry::new();
    // The patterns are constants: a typo is a bug, found by every test that builds this.
    registry
        .register("ferry.noop", Noop)
        .expect("valid pattern");
    registry
        .register("http.request", HttpRequestHandler::new()?)
        .expect("valid pattern");
    Ok(registry)
}

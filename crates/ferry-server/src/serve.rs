//! The HTTP server loop: accepts connections and serves the router on each, HTTP/1.1 and
//! HTTP/2, with a bound on how long a client may take to send a request's headers (a
//! client that opens connections and trickles its headers cannot hold them), and drains
//! open connections, bounded, on shutdown. `axum::serve` has no header timeout, so this
//! is hyper-util's connection builder with a timer.

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request},
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long open connections may finish their requests after shutdown is asked.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop`, then lets open connections finish (at most
/// [`DRAIN`]).
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
    header_read_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        // Handlers learn who is asking (`ConnectInfo`), e.g. to bound streams per client.
        let service =
            TowerToHyperService::new(app.clone().map_request(move |req: Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            }));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within {DRAIN:?}; closing them");
    }
}

//! The event record: `GET /v1/events` and `GET /v1/jobs/{id}/events`. With
//! `Accept: text/event-stream` either is a live stream (SSE): every event as it becomes
//! visible, `id:` being the event id, so a client that reconnects with `Last-Event-ID`
//! misses nothing and sees nothing twice; a comment every 15 s keeps proxies from closing
//! it. Without, a JSON page (`after`, `limit`).

use std::{collections::VecDeque, convert::Infallible, time::Duration};

use axum::{
    Router,
    extract::{RawQuery, State},
    http::{HeaderMap, header},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
    routing::get,
};
use ferry_core::{DEFAULT_TENANT, KindPattern, api::EventPage};
use ferry_store::EventFilter;
use futures_util::stream;

use super::{ApiError, AppState, Json, PathId, jobs::parse_num, jobs::query_pairs};

/// The event types the record holds.
pub const EVENT_TYPES: &[&str] = &[
    "job.created",
    "job.started",
    "job.completed",
    "job.failed",
    "job.retrying",
    "job.cancelled",
    "job.progress",
    "batch.created",
    "batch.finished",
    "dataset.changed",
];

const MAX_PAGE: u32 = 1_000;
/// Events read per query while a stream catches up; what a slow client can hold in memory.
const STREAM_PAGE: u32 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(all_events))
        .route("/v1/jobs/{id}/events", get(job_events))
}

struct Params {
    after: i64,
    limit: u32,
    filter: EventFilter,
}

fn params(raw: Option<String>, headers: &HeaderMap) -> Result<Params, ApiError> {
    let mut p = Params {
        after: 0,
        limit: 100,
        filter: EventFilter::default(),
    };
    // A reconnecting EventSource sends where it stopped.
    if let Some(last) = headers.get("last-event-id") {
        let last = last.to_str().unwrap_or_default();
        p.after = parse_num("Last-Event-ID", last, "an event id")?;
    }
    for (key, value) in query_pairs(raw, &["after", "limit", "kind", "type"])? {
        match key.as_str() {
            "after" => p.after = parse_num(&key, &value, "an event id")?,
            "limit" => {
                p.limit = parse_num(&key, &value, "a whole number")?;
                if !(1..=MAX_PAGE).contains(&p.limit) {
                    return Err(ApiError::field(
                        "limit",
                        format!("a whole number from 1 to {MAX_PAGE}"),
                    ));
                }
            }
            "kind" => {
                for k in value.split(',') {
                    p.filter.kinds.push(
                        k.parse::<KindPattern>()
                            .map_err(|e| ApiError::field("kind", e.to_string()))?,
                    );
                }
            }
            _ => {
                for t in value.split(',') {
                    if !EVENT_TYPES.contains(&t) {
                        return Err(ApiError::field(
                            "type",
                            format!(
                                "{t:?} is not an event type; known: {}",
                                EVENT_TYPES.join(", ")
                            ),
                        ));
                    }
                    p.filter.types.push(t.to_owned());
                }
            }
        }
    }
    Ok(p)
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

async fn all_events(
    State(queue): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    answer(queue, params(raw, &headers)?, wants_stream(&headers)).await
}

async fn job_events(
    State(queue): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    // A job that does not exist is a 404, not an empty record.
    queue.store().job_get(DEFAULT_TENANT, id).await?;
    let mut p = params(raw, &headers)?;
    p.filter.job = Some(id);
    answer(queue, p, wants_stream(&headers)).await
}

async fn answer(queue: AppState, p: Params, stream: bool) -> Result<Response, ApiError> {
    if stream {
        return Ok(live(queue, p.filter, p.after).into_response());
    }
    let events = queue
        .events(DEFAULT_TENANT, &p.filter, p.after, p.limit)
        .await?;
    let next_after = events.last().map_or(p.after, |e| e.id);
    Ok(Json(EventPage { events, next_after }).into_response())
}

struct Cursor {
    queue: AppState,
    filter: EventFilter,
    after: i64,
    pending: VecDeque<ferry_core::api::Event>,
    /// Rung when events may have been written (here or on another instance).
    bell: tokio::sync::watch::Receiver<u64>,
}

/// The stream: pages of at most `STREAM_PAGE` events, read only when the client has taken
/// the previous ones (so a slow client holds one page, not the record); ends when the
/// server shuts down.
fn live(
    queue: AppState,
    filter: EventFilter,
    after: i64,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let shutdown = queue.shutdown_token();
    let poll = queue.config().event_poll_interval;
    let cursor = Cursor {
        bell: queue.events_bell(),
        queue,
        filter,
        after,
        pending: VecDeque::new(),
    };
    let events = stream::unfold(cursor, move |mut c| {
        let shutdown = shutdown.clone();
        async move {
            loop {
                if let Some(event) = c.pending.pop_front() {
                    let sse = SseEvent::default()
                        .id(event.id.to_string())
                        .event(event.event_type.clone())
                        .json_data(&event)
                        .unwrap_or_else(|_| SseEvent::default().comment("unserializable event"));
                    return Some((Ok(sse), c));
                }
                if shutdown.is_cancelled() {
                    return None;
                }
                // Marked seen before reading: a ring after the read wakes the wait below.
                c.bell.borrow_and_update();
                match c
                    .queue
                    .events(DEFAULT_TENANT, &c.filter, c.after, STREAM_PAGE)
                    .await
                {
                    Ok(page) if !page.is_empty() => {
                        c.after = page.last().map_or(c.after, |e| e.id);
                        c.pending.extend(page);
                    }
                    Ok(_) => {
                        // Woken by a write anywhere; the timer catches what no ring
                        // announced (an event that was not yet visible when rung).
                        tokio::select! {
                            _ = c.bell.changed() => {}
                            _ = tokio::time::sleep(poll) => {}
                            _ = shutdown.cancelled() => return None,
                        }
                    }
                    Err(e) => {
                        // The database is away: try again shortly, the client stays.
                        tracing::warn!(error = %e, "event stream read failed");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = shutdown.cancelled() => return None,
                        }
                    }
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

//! The event record: `GET /v1/events` and `GET /v1/jobs/{id}/events`. With
//! `Accept: text/event-stream` either is a live stream (SSE): every event as it becomes
//! visible, `id:` being the event id, so a client that reconnects with `Last-Event-ID`
//! misses nothing and sees nothing twice; a comment every 15 s keeps proxies from closing
//! it. Without, a JSON page (`after`, `limit`). `after=now` starts at the record's end.
//!
//! Each read scans a bounded stretch of the record and moves the reader's position past
//! all of it, matching or not, so a filter that rarely matches costs what is new, never
//! the whole record since its last match. A stream tells the client such a position with
//! an `id:` and no data (no event is dispatched; a reconnect resumes from there). Streams
//! at the record's end share one read of it (`EventTail`), so idle streams cost filtering
//! in memory, not a query each per write.

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{HeaderMap, header},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use ferry_core::{
    FieldError, KindPattern, TenantId,
    api::{EVENT_TYPES, EventPage},
};
use ferry_store::EventFilter;
use futures_util::stream;

use super::routes::{Access, Routes};
use super::{
    ApiError, AppState, ClientAddr, Json, PathId, Principal,
    query::{FromQuery, Param, Query, limit_param, number, page_size},
};
use crate::{event_tail::EventTail, stream_slots::StreamSlot};

const MAX_PAGE: u32 = 1_000;
/// Events read per query while a stream catches up; what a slow client can hold in memory.
const STREAM_PAGE: u32 = 200;
/// How often a caught-up stream reads at most, however often writes ring: under a steady
/// stream of writes each open stream costs ten reads a second, not one per write. The
/// first write after a quiet spell is read at once.
const STREAM_READ_GAP: Duration = Duration::from_millis(100);
/// How often a stream tells its client a position at most (an `id:` without data).
const NOTE_GAP: Duration = Duration::from_secs(1);

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/events", Access::Read, all_events, |op| {
        op.id("listEvents")
            .summary("Events")
            .description(EVENTS_DOC)
            .response_with::<200, Json<EventPage>, _>(|r| {
                r.description("A page of events, or with `Accept: text/event-stream` a stream.")
            })
            .with(super::openapi::event_stream)
    })
    .get("/v1/jobs/{id}/events", Access::Read, job_events, |op| {
        op.id("listJobEvents")
            .summary("A job's events")
            .description(EVENTS_DOC)
            .response_with::<200, Json<EventPage>, _>(|r| {
                r.description("A page of events, or with `Accept: text/event-stream` a stream.")
            })
            .with(super::openapi::event_stream)
    })
}

const EVENTS_DOC: &str = "The event record, oldest first after `after`. With `Accept: \
     text/event-stream` the answer is a Server-Sent Events stream that stays open: each event \
     as `id:` (its id) and `data:` (the event as JSON), an `id:` alone now and then to mark \
     the position, a comment to keep the connection alive. A client that reconnects with \
     `Last-Event-ID` misses nothing. A client holding too many streams gets `429` \
     (`TOO_MANY_STREAMS`).";

struct Params {
    after: After,
    limit: u32,
    filter: EventFilter,
}

/// Where a read starts.
#[derive(Clone, Copy)]
enum After {
    /// After the event with this id (0: from the start).
    Id(i64),
    /// At the end of the record as it is when the request comes.
    Now,
}

/// The query of both event routes: where to start, how many, which kinds and types.
#[derive(Default)]
struct EventsQuery {
    after: Option<After>,
    limit: Option<u32>,
    filter: EventFilter,
}

impl FromQuery for EventsQuery {
    const PARAMS: &'static [Param] = &[
        Param::text(
            "after",
            "Events after this id (0: from the start), or `now`: only events to come. \
             Overrides `Last-Event-ID`.",
        ),
        limit_param(MAX_PAGE),
        Param::text(
            "kind",
            "Only events of jobs of these kinds or kind patterns, comma-separated.",
        ),
        Param::text(
            "type",
            "Only these event types, comma-separated (`job.completed,job.failed`).",
        ),
    ];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        match key {
            "after" if value == "now" => self.after = Some(After::Now),
            "after" => self.after = Some(After::Id(number(key, value, "an event id or \"now\"")?)),
            "limit" => self.limit = Some(page_size(key, value, MAX_PAGE)?),
            "kind" => {
                for k in value.split(',') {
                    self.filter.kinds.push(
                        k.parse::<KindPattern>()
                            .map_err(|e| FieldError::new(key, e.to_string()))?,
                    );
                }
            }
            _ => {
                for t in value.split(',') {
                    if !EVENT_TYPES.contains(&t) {
                        return Err(FieldError::new(
                            key,
                            format!(
                                "{t:?} is not an event type; known: {}",
                                EVENT_TYPES.join(", ")
                            ),
                        ));
                    }
                    self.filter.types.push(t.to_owned());
                }
            }
        }
        Ok(())
    }
}

/// The query, and where a reconnecting EventSource says it stopped (`Last-Event-ID`,
/// which an `after` in the query overrides).
fn params(query: EventsQuery, headers: &HeaderMap) -> Result<Params, ApiError> {
    let mut after = After::Id(0);
    if let Some(last) = headers.get("last-event-id") {
        let last = last.to_str().unwrap_or_default();
        after = After::Id(
            number("Last-Event-ID", last, "an event id")
                .map_err(|e| ApiError::validation(vec![e]))?,
        );
    }
    Ok(Params {
        after: query.after.unwrap_or(after),
        limit: query.limit.unwrap_or(100),
        filter: query.filter,
    })
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

async fn all_events(
    State(queue): State<AppState>,
    principal: Principal,
    client: ClientAddr,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let stream = wants_stream(&headers).then_some(client);
    answer(queue, principal, params(query, &headers)?, stream).await
}

async fn job_events(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
    client: ClientAddr,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    // A job that does not exist is a 404, not an empty record.
    queue.get(&principal.tenant, id).await?;
    let mut p = params(query, &headers)?;
    p.filter.job = Some(id);
    let stream = wants_stream(&headers).then_some(client);
    answer(queue, principal, p, stream).await
}

/// Answers a page, or (for `stream: Some(client)`) a live stream holding one of the
/// client's stream places.
async fn answer(
    queue: AppState,
    principal: Principal,
    p: Params,
    stream: Option<ClientAddr>,
) -> Result<Response, ApiError> {
    let slot = match stream {
        Some(ClientAddr(client)) => Some(queue.stream_slots().take(client)?),
        None => None,
    };
    let after = match p.after {
        After::Id(id) => id,
        After::Now => queue.events_head().await?,
    };
    if let Some(slot) = slot {
        // Without the shared tail (the database is away, or it holds another tenant's
        // events) the stream reads on its own.
        let tail =
            (queue.event_tail().await.ok()).filter(|tail| *tail.tenant() == principal.tenant);
        return Ok(live(queue, principal.tenant, slot, tail, p.filter, after).into_response());
    }
    if matches!(p.after, After::Now) {
        return Ok(Json(EventPage {
            events: Vec::new(),
            next_after: after,
        })
        .into_response());
    }
    let page: EventPage = queue
        .events(&principal.tenant, &p.filter, after, p.limit)
        .await?;
    Ok(Json(page).into_response())
}

/// What a stream sends next.
enum Pending {
    Event(ferry_core::api::Event),
    /// The position moved past events that did not match: an `id:` without data.
    Position(i64),
}

struct Cursor {
    queue: AppState,
    tenant: TenantId,
    filter: EventFilter,
    after: i64,
    pending: VecDeque<Pending>,
    /// Rung when events may have been written (here or on another instance).
    bell: tokio::sync::watch::Receiver<u64>,
    /// When the stream last read while caught up.
    last_idle_read: tokio::time::Instant,
    /// The position the client last heard of (an event's id or a note) and when a note
    /// was last sent.
    told: i64,
    last_note: tokio::time::Instant,
    /// The record's newest stretch, shared with the other streams, and its end.
    tail: Option<(Arc<EventTail>, tokio::sync::watch::Receiver<i64>)>,
    /// This stream's place, given back when the stream ends.
    _slot: StreamSlot,
}

/// The stream: pages of at most `STREAM_PAGE` events, read only when the client has taken
/// the previous ones (so a slow client holds one page, not the record); ends when the
/// server shuts down.
fn live(
    queue: AppState,
    tenant: TenantId,
    slot: StreamSlot,
    tail: Option<Arc<EventTail>>,
    filter: EventFilter,
    after: i64,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let shutdown = queue.shutdown_token();
    let poll = queue.config().event_poll_interval;
    let cursor = Cursor {
        bell: queue.events_bell(),
        queue,
        tenant,
        filter,
        after,
        pending: VecDeque::new(),
        last_idle_read: tokio::time::Instant::now() - STREAM_READ_GAP,
        told: after,
        last_note: tokio::time::Instant::now() - NOTE_GAP,
        tail: tail.map(|t| {
            let end = t.subscribe();
            (t, end)
        }),
        _slot: slot,
    };
    let events = stream::unfold(cursor, move |mut c| {
        let shutdown = shutdown.clone();
        async move {
            loop {
                match c.pending.pop_front() {
                    Some(Pending::Event(event)) => {
                        c.told = event.id;
                        let sse = SseEvent::default()
                            .id(event.id.to_string())
                            .event(event.event_type.clone())
                            .json_data(&event)
                            .unwrap_or_else(|_| {
                                SseEvent::default().comment("unserializable event")
                            });
                        return Some((Ok(sse), c));
                    }
                    Some(Pending::Position(id)) => {
                        c.told = id;
                        c.last_note = tokio::time::Instant::now();
                        return Some((Ok(SseEvent::default().id(id.to_string())), c));
                    }
                    None => {}
                }
                if shutdown.is_cancelled() {
                    return None;
                }
                // Marked seen before reading: a ring after the read wakes the wait below.
                c.bell.borrow_and_update();
                // From the shared tail when it holds the position, else from the store.
                let shared = c.tail.as_mut().and_then(|(tail, end)| {
                    end.borrow_and_update();
                    tail.read(c.after, &c.filter, STREAM_PAGE)
                });
                let from_tail = shared.is_some();
                let read = match shared {
                    Some(page) => Ok(page),
                    None => {
                        c.queue
                            .events(&c.tenant, &c.filter, c.after, STREAM_PAGE)
                            .await
                    }
                };
                match read {
                    Ok(page) if page.next_after != c.after => {
                        // Past what was scanned; the client hears of it (after the
                        // events, at most once per NOTE_GAP) when it lies beyond them.
                        c.after = page.next_after;
                        c.pending
                            .extend(page.events.into_iter().map(Pending::Event));
                        if c.pending.is_empty() && c.last_note.elapsed() >= NOTE_GAP {
                            c.pending.push_back(Pending::Position(c.after));
                        }
                        continue;
                    }
                    Ok(_) if c.told != c.after && c.pending.is_empty() => {
                        // Caught up with a position the client has not heard of: note it
                        // when NOTE_GAP has passed, unless there is more to read first.
                        let note_at = c.last_note + NOTE_GAP;
                        let Some((_, end)) = c.tail.as_mut() else {
                            tokio::select! {
                                _ = tokio::time::sleep_until(note_at) => {
                                    c.pending.push_back(Pending::Position(c.after));
                                }
                                _ = c.bell.changed() => {}
                                _ = shutdown.cancelled() => return None,
                            }
                            continue;
                        };
                        tokio::select! {
                            _ = tokio::time::sleep_until(note_at) => {
                                c.pending.push_back(Pending::Position(c.after));
                            }
                            _ = end.changed() => {}
                            _ = shutdown.cancelled() => return None,
                        }
                    }
                    Ok(_) if from_tail => {
                        // Caught up with the tail: wait for it to read on.
                        let Some((_, end)) = c.tail.as_mut() else {
                            continue;
                        };
                        tokio::select! {
                            _ = end.changed() => {}
                            _ = shutdown.cancelled() => return None,
                        }
                    }
                    Ok(_) => {
                        // Woken by a write anywhere; the timer catches what no ring
                        // announced (an event that was not yet visible when rung).
                        tokio::select! {
                            _ = c.bell.changed() => {}
                            _ = tokio::time::sleep(poll) => {}
                            _ = shutdown.cancelled() => return None,
                        }
                        let next_read = c.last_idle_read + STREAM_READ_GAP;
                        tokio::select! {
                            _ = tokio::time::sleep_until(next_read) => {}
                            _ = shutdown.cancelled() => return None,
                        }
                        c.last_idle_read = tokio::time::Instant::now();
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

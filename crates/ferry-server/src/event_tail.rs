//! The newest stretch of the event record, read once per instance and shared by every
//! live stream: one reader follows the record's end (woken by the event bell, like a
//! stream) and keeps its recent pages in memory; a stream whose position lies in them
//! filters them there instead of querying the store, so N open streams cost one read per
//! wake-up, not N. It holds one tenant's events only (the server's), exactly as
//! `Store::events_read` answered them, so what a stream takes from it is what its own
//! read would have answered. A position it does not hold (older than what it keeps, or
//! another tenant's event) is answered `None`: the stream reads the store.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use ferry_core::{TenantId, api::Event, api::EventPage};
use ferry_store::{EventFilter, Store};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Events kept at most (a few MiB); a stream further behind reads the store.
const KEEP_EVENTS: usize = 20_000;
/// Events the reader asks for per read.
const READ_PAGE: u32 = 1_000;
/// How often the reader reads at most while it keeps up (the first write after a quiet
/// spell is read at once).
const READ_GAP: Duration = Duration::from_millis(100);
/// After a wake-up that found nothing new, how long the tail keeps looking (every
/// `RECHECK_EVERY`): on PostgreSQL an event is readable only once every older transaction
/// in the cluster has ended (exact resumption), so the write that rang the bell may show a
/// moment later, when no further ring will come.
const RECHECK_FOR: Duration = Duration::from_secs(5);
const RECHECK_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct EventTail {
    /// Whose events it holds.
    tenant: TenantId,
    pages: Mutex<VecDeque<Page>>,
    /// The position the tail has read up to; streams wait on it.
    end: watch::Sender<i64>,
}

/// One read: the events after `from` up to `to` (the last event scanned), and where
/// each type's events are among them (a stream filtered on a rare type skips the rest).
#[derive(Debug)]
struct Page {
    from: i64,
    to: i64,
    events: Vec<Event>,
    by_type: HashMap<String, Vec<usize>>,
}

impl Page {
    fn new(from: i64, to: i64, events: Vec<Event>) -> Page {
        let mut by_type: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            by_type.entry(e.event_type.clone()).or_default().push(i);
        }
        Page {
            from,
            to,
            events,
            by_type,
        }
    }

    /// Indices of the events from `skip` on that may match `filter`, in record order.
    fn candidates(&self, filter: &EventFilter, skip: usize) -> Vec<usize> {
        if filter.types.is_empty() {
            return (skip..self.events.len()).collect();
        }
        let mut at: Vec<usize> = filter
            .types
            .iter()
            .filter_map(|t| self.by_type.get(t))
            .flatten()
            .copied()
            .filter(|&i| i >= skip)
            .collect();
        at.sort_unstable();
        at
    }
}

impl EventTail {
    /// A tail from the record's current end, and its reader, which runs until `stop`.
    pub async fn start(
        store: Store,
        tenant: TenantId,
        bell: watch::Receiver<u64>,
        poll: Duration,
        stop: CancellationToken,
    ) -> ferry_store::StoreResult<Arc<EventTail>> {
        let end = store.events_head().await?;
        let tail = Arc::new(EventTail {
            tenant,
            pages: Mutex::new(VecDeque::new()),
            end: watch::channel(end).0,
        });
        tokio::spawn(tail.clone().follow(store, bell, poll, stop));
        Ok(tail)
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// What the tail has read up to changes: wait on this.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.end.subscribe()
    }

    /// The events after `after` that match `filter` (at most `limit`) and where to resume,
    /// as `Store::events_read` would answer them; `None` when the tail does not hold
    /// `after`.
    pub fn read(&self, after: i64, filter: &EventFilter, limit: u32) -> Option<EventPage> {
        let end = *self.end.borrow();
        if after == end {
            return Some(EventPage {
                events: Vec::new(),
                next_after: end,
            });
        }
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        // Where `after` lies: a page's start (newest first: streams keep up), or else one
        // of its events.
        let (first_page, skip) = match pages.iter().rposition(|p| p.from == after) {
            Some(i) => (i, 0),
            None => pages.iter().enumerate().rev().find_map(|(i, p)| {
                p.events
                    .iter()
                    .position(|e| e.id == after)
                    .map(|at| (i, at + 1))
            })?,
        };
        let mut events = Vec::new();
        let mut next_after = after;
        for (i, page) in pages.iter().enumerate().skip(first_page) {
            let from = if i == first_page { skip } else { 0 };
            for e in page
                .candidates(filter, from)
                .into_iter()
                .map(|at| &page.events[at])
            {
                if matches(filter, e) {
                    events.push(e.clone());
                    if events.len() >= limit as usize {
                        return Some(EventPage {
                            events,
                            next_after: e.id,
                        });
                    }
                }
            }
            next_after = page.to;
        }
        Some(EventPage { events, next_after })
    }

    async fn follow(
        self: Arc<Self>,
        store: Store,
        mut bell: watch::Receiver<u64>,
        poll: Duration,
        stop: CancellationToken,
    ) {
        let mut last_idle_read = tokio::time::Instant::now();
        let mut recheck_until: Option<tokio::time::Instant> = None;
        loop {
            bell.borrow_and_update();
            let after = *self.end.borrow();
            match store
                .events_read(
                    &self.tenant,
                    &EventFilter::default(),
                    after,
                    READ_PAGE,
                    ferry_store::EVENTS_SCAN,
                )
                .await
            {
                Ok(page) if page.next_after != after => {
                    self.push(Page::new(after, page.next_after, page.events));
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "event tail read failed"),
            }
            // Caught up (or the database is away): wait for a write, or look again; under
            // a steady stream of writes, read (and wake the streams) every READ_GAP.
            let recheck = recheck_until.filter(|t| tokio::time::Instant::now() < *t);
            tokio::select! {
                _ = bell.changed() => {
                    recheck_until = Some(tokio::time::Instant::now() + RECHECK_FOR);
                }
                _ = tokio::time::sleep(poll) => {}
                _ = tokio::time::sleep(RECHECK_EVERY), if recheck.is_some() => {}
                _ = stop.cancelled() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep_until(last_idle_read + READ_GAP) => {}
                _ = stop.cancelled() => return,
            }
            last_idle_read = tokio::time::Instant::now();
        }
    }

    fn push(&self, page: Page) {
        let to = page.to;
        {
            let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
            pages.push_back(page);
            let mut kept: usize = pages.iter().map(|p| p.events.len()).sum();
            while kept > KEEP_EVENTS && pages.len() > 1 {
                kept -= pages.pop_front().map_or(0, |p| p.events.len());
            }
        }
        self.end.send_replace(to);
    }
}

/// `filter` as the store applies it.
fn matches(filter: &EventFilter, e: &Event) -> bool {
    filter.job.is_none_or(|job| e.job_id == Some(job))
        && (filter.kinds.is_empty()
            || filter.kinds.iter().any(|k| match k {
                ferry_core::KindPattern::Any => true,
                k => e.kind.as_deref().is_some_and(|kind| k.matches(kind)),
            }))
        && (filter.types.is_empty() || filter.types.contains(&e.event_type))
}

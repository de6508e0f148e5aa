//! Group commit of completions on SQLite: reports that arrive while the store is writing
//! others are written together, in one statement, when it is done. Workers report from
//! many connections at once (each worker several batches in flight), and SQLite has one
//! writer, a WAL append per transaction; under load it writes a few large batches instead
//! of many small ones, and when idle a report is written at once, as before. (PostgreSQL
//! writes reports side by side on connections of its own and groups commits itself;
//! taking its reports one group at a time halved its drain, so it does not use this.)
//!
//! A report is queued and, unless a writer is at work already, starts one: a task that
//! writes what is queued, a group at a time, until nothing is left. The writer is a task
//! of its own, so a request that went away (its future dropped) never leaves the reports
//! it was grouped with unanswered, nor its own unwritten. A group holds each job once (a
//! repeated report of a job waits for the next group), and when a combined write fails as
//! a whole each report is written again on its own, so one that cannot be written never
//! fails the reports it was grouped with.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ferry_core::{Clock, api::BatchCompleteEntry};
use ferry_store::{CompleteParams, Store, StoreError, StoreResult};
use tokio::sync::oneshot;

/// At most this many completions are written in one statement.
const MAX_GROUP: usize = 2_000;

/// One completion, owned (it outlives the request that sent it).
pub(crate) type Entry = BatchCompleteEntry;

/// One answer per entry, in order; `Err` when the write failed as a whole.
type Answers = StoreResult<Vec<StoreResult<()>>>;

/// A report waiting for its write.
struct Waiting {
    entries: Vec<Entry>,
    answer: oneshot::Sender<Answers>,
}

#[derive(Default)]
struct Queued {
    waiting: std::collections::VecDeque<Waiting>,
    /// A writer task is at work (and will take what is queued).
    writing: bool,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    queued: std::sync::Mutex<Queued>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Completes `entries`, written with whatever else is queued; `clock` stamps each
    /// group when it is written.
    pub(crate) async fn complete(
        self: &Arc<Self>,
        store: &Store,
        clock: &Arc<dyn Clock>,
        entries: Vec<Entry>,
    ) -> Answers {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queued = self.lock();
            queued.waiting.push_back(Waiting { entries, answer });
            !std::mem::replace(&mut queued.writing, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).write_all(store.clone(), Arc::clone(clock)));
        }
        answered.await.unwrap_or_else(|_| Err(dropped()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queued> {
        // A panic while holding the lock left plain data, still whole.
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes groups until nothing is queued.
    async fn write_all(self: Arc<Self>, store: Store, clock: Arc<dyn Clock>) {
        // A write that panicked leaves the writer's place free for the next report (the
        // reports of its group are answered `dropped`).
        struct Unwinding<'a>(&'a GroupCommit);
        impl Drop for Unwinding<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.lock().writing = false;
                }
            }
        }
        let _unwinding = Unwinding(&self);
        loop {
            let group = self.take_group();
            if group.is_empty() {
                return;
            }
            write(&store, group, clock.now()).await;
        }
    }

    /// The oldest queued reports, up to [`MAX_GROUP`] entries (at least one report), up to
    /// the first that names a job already in the group; none, and the writer done, when
    /// nothing is queued.
    fn take_group(&self) -> Vec<Waiting> {
        let mut queued = self.lock();
        let mut group: Vec<Waiting> = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut total = 0;
        while let Some(next) = queued.waiting.front() {
            let repeats = next.entries.iter().any(|e| ids.contains(&e.id));
            if !group.is_empty() && (repeats || total + next.entries.len() > MAX_GROUP) {
                break;
            }
            let Some(next) = queued.waiting.pop_front() else {
                break;
            };
            total += next.entries.len();
            ids.extend(next.entries.iter().map(|e| e.id));
            group.push(next);
        }
        if group.is_empty() {
            queued.writing = false;
        }
        group
    }
}

/// The error a report gets when its write went away without answering (the runtime
/// shutting down, or a panic in the write).
fn dropped() -> StoreError {
    StoreError::Corrupt("the completion's write was stopped".to_owned())
}

/// Writes `group` in one statement and answers each report; when that fails as a whole,
/// writes each report on its own.
async fn write(store: &Store, group: Vec<Waiting>, now: DateTime<Utc>) {
    let params: Vec<CompleteParams<'_>> = group
        .iter()
        .flat_map(|w| &w.entries)
        .map(CompleteParams::from)
        .collect();
    let together = store.job_complete(&params, now).await;
    drop(params);
    match together {
        Ok(completed) => {
            let mut answers = completed.answers.into_iter();
            for w in group {
                let mine = answers.by_ref().take(w.entries.len()).collect();
                let _ = w.answer.send(Ok(mine));
            }
        }
        Err(e) if group.len() == 1 => {
            if let Some(w) = group.into_iter().next() {
                let _ = w.answer.send(Err(e));
            }
        }
        Err(_) => {
            for w in group {
                let params: Vec<CompleteParams<'_>> =
                    w.entries.iter().map(CompleteParams::from).collect();
                let alone = store.job_complete(&params, now).await;
                drop(params);
                let _ = w.answer.send(alone.map(|c| c.answers));
            }
        }
    }
}

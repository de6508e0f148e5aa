//! Group commit of completions on SQLite: reports that arrive while the store is writing
//! others are written together, in one statement, when it is done. Workers report from
//! many connections at once (each worker several batches in flight), and SQLite has one
//! writer, a WAL append per transaction; under load it writes a few large batches instead
//! of many small ones, and when idle a report is written at once, as before. (PostgreSQL
//! writes reports side by side on connections of its own and groups commits itself;
//! taking its reports one group at a time halved its drain, so it does not use this.)
//!
//! Whoever finds the store free writes everything waiting, its own report among it. The
//! write runs as a task of its own, so a report whose HTTP request went away mid-write
//! (its future dropped) never leaves the others it carried unanswered. When a combined
//! write fails as a whole, each report is written again on its own, so one that cannot be
//! written never fails the reports it was grouped with.

use chrono::{DateTime, Utc};
use ferry_core::JobId;
use ferry_store::{CompleteParams, Store, StoreError, StoreResult};
use serde_json::Value;
use tokio::sync::oneshot;

/// At most this many completions are written in one statement.
const MAX_GROUP: usize = 2_000;

/// One completion, owned (it outlives the request that sent it).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: JobId,
    pub(crate) lease: String,
    pub(crate) result: Value,
}

/// One answer per entry, in order; `Err` when the write failed as a whole.
type Answers = StoreResult<Vec<StoreResult<()>>>;

/// A report waiting for its write.
struct Waiting {
    entries: Vec<Entry>,
    answer: oneshot::Sender<Answers>,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    /// Held while a group is written.
    writing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Completes `entries`, written with whatever else is waiting; `now` is asked when the
    /// group is written.
    pub(crate) async fn complete(
        &self,
        store: &Store,
        entries: Vec<Entry>,
        now: impl Fn() -> DateTime<Utc>,
    ) -> Answers {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (answer, mut answered) = oneshot::channel();
        self.lock_waiting().push(Waiting { entries, answer });
        loop {
            tokio::select! {
                biased;
                answer = &mut answered => return answer.unwrap_or_else(|_| Err(dropped())),
                writing = self.writing.lock() => {
                    let group = self.take_group();
                    if group.is_empty() {
                        // Another writer took this report: its answer is on the way.
                        drop(writing);
                        return answered.await.unwrap_or_else(|_| Err(dropped()));
                    }
                    let write = tokio::spawn(write(store.clone(), group, now()));
                    let _ = write.await;
                    drop(writing);
                }
            }
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        // A panic while holding the lock left a plain Vec, still whole.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The oldest waiting reports, up to [`MAX_GROUP`] entries (at least one report).
    fn take_group(&self) -> Vec<Waiting> {
        let mut waiting = self.lock_waiting();
        let mut total = 0;
        let take = waiting
            .iter()
            .take_while(|w| {
                total += w.entries.len();
                total <= MAX_GROUP || total == w.entries.len()
            })
            .count();
        waiting.drain(..take).collect()
    }
}

/// The error a report gets when its write went away without answering (the runtime
/// shutting down).
fn dropped() -> StoreError {
    StoreError::Corrupt("the completion's write was stopped".to_owned())
}

/// Writes `group` in one statement and answers each report; when that fails as a whole,
/// writes each report on its own.
async fn write(store: Store, group: Vec<Waiting>, now: DateTime<Utc>) {
    let params: Vec<CompleteParams<'_>> = group
        .iter()
        .flat_map(|w| &w.entries)
        .map(|e| CompleteParams {
            id: e.id,
            lease: &e.lease,
            result: &e.result,
        })
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
                let params: Vec<CompleteParams<'_>> = w
                    .entries
                    .iter()
                    .map(|e| CompleteParams {
                        id: e.id,
                        lease: &e.lease,
                        result: &e.result,
                    })
                    .collect();
                let alone = store.job_complete(&params, now).await;
                drop(params);
                let _ = w.answer.send(alone.map(|c| c.answers));
            }
        }
    }
}

//! What both backends share of writing a job's items to its dataset: keys, content
//! hashes, and the sorting of each item into new / changed / unchanged.
//!
//! A completion with `output` runs, in its own transaction, before the job's own update:
//! upsert the dataset row (on PostgreSQL this locks it, so two runs on one dataset apply
//! one after the other), add a run row, read the attempt's items in pages and upsert each
//! page by key, mark the rows a snapshot run did not see as gone, then record the counts.
//! All of it inside a savepoint: a snapshot run that would mark more than
//! `output.max_gone` of the rows gone is rolled back and its job fails
//! (`DATASET_GONE_LIMIT`) instead of completing. `dataset.changed` is recorded after the
//! job's completion, so the record tells the completion first.

use std::collections::HashMap;

use ferry_core::{
    JobError,
    dataset::{self, DatasetChange, Output},
    error::job_codes,
};
use serde_json::Value;

use crate::{StoreError, StoreResult};

/// Items read per page while applying a run.
pub(crate) const APPLY_PAGE: i64 = 1_000;

/// One item ready to upsert.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub key: String,
    /// Canonical JSON text (sorted keys).
    pub data: String,
    /// Hex SHA-256 of `data`.
    pub hash: String,
    /// Its top-level fields (sorted).
    pub fields: Vec<String>,
}

/// A row already in the dataset.
#[derive(Debug, Clone)]
pub(crate) struct Existing {
    pub hash: String,
    pub run: i64,
    pub gone: bool,
}

/// Parses a page of stored items into upserts, keyed by `output.key`; a key seen twice in
/// the page keeps its last content (once, in its first place).
pub(crate) fn prepare(output: &Output, texts: &[String]) -> StoreResult<Vec<Incoming>> {
    let mut out: Vec<Incoming> = Vec::with_capacity(texts.len());
    let mut at: HashMap<String, usize> = HashMap::new();
    for text in texts {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("bad item json: {e}")))?;
        // Items were checked against the key when reported; one that no longer passes
        // (the key field changed between attempts cannot happen: output is fixed) is corrupt.
        let key = dataset::item_key(&value, &output.key).map_err(StoreError::Corrupt)?;
        let fields = value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let data = dataset::canonical(&value);
        let hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, &data));
        let data = String::from_utf8(data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let item = Incoming {
            key,
            data,
            hash,
            fields,
        };
        match at.get(&item.key) {
            Some(&i) => out[i] = item,
            None => {
                at.insert(item.key.clone(), out.len());
                out.push(item);
            }
        }
    }
    Ok(out)
}

/// Counts `item` into `change` given the row it replaces (`run` is this run's id).
pub(crate) fn classify(
    change: &mut DatasetChange,
    revived: &mut u64,
    item: &Incoming,
    existing: Option<&Existing>,
    run: i64,
) {
    match existing {
        // Reported earlier in this run: the later content wins, counted once.
        Some(e) if e.run == run => {}
        None => {
            change.new += 1;
            change.note(&item.key, |k| &mut k.new);
        }
        Some(e) if e.gone => {
            change.new += 1;
            *revived += 1;
            change.note(&item.key, |k| &mut k.new);
        }
        Some(e) if e.hash != item.hash => {
            change.changed += 1;
            change.note(&item.key, |k| &mut k.changed);
        }
        Some(_) => change.unchanged += 1,
    }
}

/// Adds the fields of `items` that `known` lacks, in order; answers whether any was new.
pub(crate) fn learn_fields(known: &mut Vec<String>, items: &[Incoming]) -> bool {
    let before = known.len();
    for item in items {
        for field in &item.fields {
            if !known.contains(field) {
                known.push(field.clone());
            }
        }
    }
    known.len() > before
}

/// Checks each item a worker reports for a job with `output`, before it is stored.
pub(crate) fn check_items(output: Option<&Output>, items: &[Value]) -> StoreResult<()> {
    let Some(output) = output else {
        return Ok(());
    };
    for (index, item) in items.iter().enumerate() {
        dataset::item_key(item, &output.key)
            .map_err(|message| StoreError::InvalidItem { index, message })?;
    }
    Ok(())
}

/// What applying one run came to.
#[derive(Debug)]
pub(crate) enum Applied {
    /// Written; carries the change to record as `dataset.changed`, if anything changed.
    Done(Option<DatasetChange>),
    /// Nothing written: the job fails with this error instead of completing.
    Refused(JobError),
}

/// The error of a snapshot run that would have marked `gone` of `live` rows gone.
pub(crate) fn gone_limit(output: &Output, gone: u64, live: u64) -> JobError {
    JobError::new(
        job_codes::DATASET_GONE_LIMIT,
        format!(
            "this snapshot run would mark {gone} of the {live} rows of dataset {:?} gone, more \
             than output.max_gone ({}) allows: the dataset is unchanged and the items stay on \
             the job; check that the page was the one expected (signed in, not blocked), or \
             submit again with max_gone 1 to apply such a run",
            output.dataset,
            output.max_gone()
        ),
        false,
    )
}

/// What a completion needs to apply a job's run.
#[derive(Debug, Clone)]
pub(crate) struct RunSource {
    pub tenant_id: String,
    pub job_id: ferry_core::JobId,
    pub kind: String,
    pub attempt: i64,
    pub lease: String,
    pub output: Output,
}

impl RunSource {
    /// The order runs of one completion apply in: by dataset, then job.
    pub fn order(a: &Self, b: &Self) -> std::cmp::Ordering {
        (&a.tenant_id, &a.output.dataset, a.job_id.as_uuid()).cmp(&(
            &b.tenant_id,
            &b.output.dataset,
            b.job_id.as_uuid(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use ferry_core::dataset::OutputMode;

    use super::*;

    fn output() -> Output {
        Output {
            dataset: "d".into(),
            key: "id".into(),
            mode: OutputMode::Snapshot,
            max_gone: None,
        }
    }

    #[test]
    fn a_key_twice_in_a_page_keeps_its_last_content_once() {
        let texts = [
            r#"{"id":1,"v":"a"}"#.to_owned(),
            r#"{"id":2,"v":"b"}"#.to_owned(),
            r#"{"v":"c","id":1}"#.to_owned(),
        ];
        let items = prepare(&output(), &texts).expect("prepare");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].key, "1");
        assert_eq!(items[0].data, r#"{"id":1,"v":"c"}"#);
    }

    #[test]
    fn classification() {
        let item = |key: &str, data: &str| {
            prepare(&output(), &[format!(r#"{{"id":"{key}","v":"{data}"}}"#)])
                .expect("prepare")
                .remove(0)
        };
        let old = item("a", "1");
        let mut change = DatasetChange::default();
        let mut revived = 0;
        let existing = |hash: &str, run, gone| Existing {
            hash: hash.to_owned(),
            run,
            gone,
        };
        classify(&mut change, &mut revived, &item("n", "1"), None, 5);
        classify(
            &mut change,
            &mut revived,
            &item("a", "2"),
            Some(&existing(&old.hash, 4, false)),
            5,
        );
        classify(
            &mut change,
            &mut revived,
            &old,
            Some(&existing(&old.hash, 4, false)),
            5,
        );
        classify(
            &mut change,
            &mut revived,
            &old,
            Some(&existing(&old.hash, 3, true)),
            5,
        );
        classify(
            &mut change,
            &mut revived,
            &old,
            Some(&existing("x", 5, false)),
            5,
        );
        assert_eq!(
            (change.new, change.changed, change.unchanged, revived),
            (2, 1, 1, 1)
        );
        assert_eq!(change.keys.new, ["n", "a"]);
        assert_eq!(change.keys.changed, ["a"]);
        assert!(
            check_items(
                Some(&output()),
                &[serde_json::json!({"id": 1}), serde_json::json!({})]
            )
            .is_err()
        );
    }
}

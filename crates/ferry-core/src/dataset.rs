//! Datasets: named tables of items kept up to date by jobs. A job with `output` writes the
//! items it streamed (its partial results) to a dataset when it completes; the server
//! upserts them by key and records which were new, changed or gone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{FieldError, JobId};

/// Longest dataset name.
pub const MAX_NAME_LEN: usize = 128;
/// Longest key field name.
pub const MAX_KEY_FIELD_LEN: usize = 128;
/// Longest item key (the key field's value, as text).
pub const MAX_KEY_LEN: usize = 512;
/// At most this many keys of each sort (new, changed, gone) are named in a
/// `dataset.changed` event; the counts are always whole.
pub const MAX_EVENT_KEYS: usize = 1_000;
/// A snapshot run that would mark more than this share of the dataset's rows gone is
/// refused unless its `output.max_gone` allows more (see [`Output::max_gone`]).
pub const DEFAULT_MAX_GONE: f64 = 0.5;

/// `output` of a job: where its items go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The dataset's name: 1-128 of letters, digits, `_ - . :` (`reviews:shop-1`).
    pub dataset: String,
    /// The item field whose value identifies an item (a string or an integer).
    pub key: String,
    #[serde(default)]
    pub mode: OutputMode,
    /// A snapshot run that would mark more than this share (0 to 1) of the rows that were
    /// there before it gone is refused: the job fails with `DATASET_GONE_LIMIT`, its items
    /// stay on the job and the dataset is left as it was. Default
    /// [`DEFAULT_MAX_GONE`]; `1` lets any run through (to force one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gone: Option<f64>,
}

impl Output {
    /// The share of rows a snapshot run may mark gone.
    pub fn max_gone(&self) -> f64 {
        self.max_gone.unwrap_or(DEFAULT_MAX_GONE)
    }

    /// Whether a snapshot run that would mark `gone` of `live` rows gone must be refused.
    pub fn refuses_gone(&self, gone: u64, live: u64) -> bool {
        self.mode == OutputMode::Snapshot && gone > 0 && gone as f64 > self.max_gone() * live as f64
    }
}

/// How a run relates to the rows already in its dataset.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// The run is the whole dataset: rows it did not report are marked gone.
    #[default]
    Snapshot,
    /// The run adds and updates rows; none goes away.
    Merge,
}

impl OutputMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputMode::Snapshot => "snapshot",
            OutputMode::Merge => "merge",
        }
    }
}

impl std::str::FromStr for OutputMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "snapshot" => Ok(OutputMode::Snapshot),
            "merge" => Ok(OutputMode::Merge),
            other => Err(format!("unknown output mode {other:?}")),
        }
    }
}

pub fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// Checks an `output` spec; `at` is its JSON path.
pub fn validate_output(output: &Output, at: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !name_ok(&output.dataset) {
        errors.push(FieldError::new(
            format!("{at}.dataset"),
            format!("1-{MAX_NAME_LEN} characters of letters, digits, '_', '-', '.', ':'"),
        ));
    }
    if output.key.is_empty()
        || output.key.len() > MAX_KEY_FIELD_LEN
        || output.key.chars().any(char::is_control)
    {
        errors.push(FieldError::new(
            format!("{at}.key"),
            format!("the name of an item field: 1-{MAX_KEY_FIELD_LEN} bytes"),
        ));
    }
    if let Some(share) = output.max_gone
        && !(0.0..=1.0).contains(&share)
    {
        errors.push(FieldError::new(
            format!("{at}.max_gone"),
            "a share from 0 to 1 of the dataset's rows a snapshot run may mark gone",
        ));
    }
    errors
}

/// The key of `item` under `field`: a string as it is, an integer in decimal.
pub fn item_key(item: &Value, field: &str) -> Result<String, String> {
    let Value::Object(map) = item else {
        return Err(format!(
            "dataset items must be JSON objects with a {field:?} field"
        ));
    };
    let key = match map.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(other) => {
            return Err(format!(
                "the key field {field:?} must be a string or an integer, not {other}"
            ));
        }
        None => return Err(format!("the item has no {field:?} field (the dataset key)")),
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "the key field {field:?} must be 1-{MAX_KEY_LEN} bytes"
        ));
    }
    Ok(key)
}

/// An item's content in canonical form (object keys sorted), what its hash is taken of:
/// the same content always gives the same bytes, whatever order a scraper wrote fields in.
pub fn canonical(item: &Value) -> Vec<u8> {
    // serde_json's `Map` is a BTreeMap (the `preserve_order` feature is off), so
    // serializing sorts keys at every level. A test below holds this.
    serde_json::to_vec(item).unwrap_or_default()
}

/// One dataset, as `GET /v1/datasets` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetInfo {
    pub name: String,
    /// The key field of the last run.
    pub key: String,
    /// Items present now (not gone).
    pub items: u64,
    /// Items marked gone by a snapshot run (kept; listed with `gone=include`).
    pub gone: u64,
    /// Every top-level field its items have had, in order of first appearance (the columns
    /// of a CSV export, after the key).
    pub fields: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<DatasetRun>,
}

/// `GET /v1/datasets`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetList {
    pub datasets: Vec<DatasetInfo>,
}

/// What one job did to a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetRun {
    pub id: i64,
    pub job_id: JobId,
    pub mode: OutputMode,
    /// Keys not present before (or present but gone).
    pub new: u64,
    /// Keys present before whose content changed.
    pub changed: u64,
    pub unchanged: u64,
    /// Keys present before that this (snapshot) run did not report.
    pub gone: u64,
    pub at: DateTime<Utc>,
}

/// `GET /v1/datasets/{name}/runs`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetRunList {
    pub runs: Vec<DatasetRun>,
}

/// One row of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetItem {
    /// Position in the dataset (order of first appearance); the paging cursor.
    pub seq: i64,
    pub key: String,
    pub data: Value,
    pub first_seen_at: DateTime<Utc>,
    /// When its content last changed.
    pub changed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_at: Option<DateTime<Utc>>,
}

/// `GET /v1/datasets/{name}/items`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetItemPage {
    pub items: Vec<DatasetItem>,
    /// Pass as `after` to continue; the last item's `seq` (or the `after` given).
    pub next_after: i64,
}

/// The data of a `dataset.changed` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetChange {
    pub dataset: String,
    pub run: i64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub gone: u64,
    /// Up to [`MAX_EVENT_KEYS`] keys of each sort.
    pub keys: ChangedKeys,
    /// Whether some keys were left out of `keys` (the counts are whole).
    pub keys_truncated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChangedKeys {
    pub new: Vec<String>,
    pub changed: Vec<String>,
    pub gone: Vec<String>,
}

impl DatasetChange {
    /// Whether anything changed (`dataset.changed` is recorded only then).
    pub fn is_change(&self) -> bool {
        self.new + self.changed + self.gone > 0
    }

    /// Names `key` under the list `pick` chooses, while there is room.
    pub fn note(&mut self, key: &str, pick: fn(&mut ChangedKeys) -> &mut Vec<String>) {
        let list = pick(&mut self.keys);
        if list.len() < MAX_EVENT_KEYS {
            list.push(key.to_owned());
        } else {
            self.keys_truncated = true;
        }
    }
}

/// Export formats of `GET /v1/datasets/{name}/export`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One JSON array.
    #[default]
    Json,
    /// One JSON object per line.
    Jsonl,
    /// A header row, then one row per item; nested values as JSON text.
    Csv,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Json => "application/json",
            ExportFormat::Jsonl => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(ExportFormat::Json),
            "jsonl" | "ndjson" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(format!("unknown format {other:?}: json, jsonl or csv")),
        }
    }
}

/// The text of a CSV cell for a field's value: strings as they are, null as empty,
/// numbers and booleans as JSON writes them, arrays and objects as JSON text.
pub fn csv_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_form_ignores_field_order() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[1,{"q":1,"p":2}]}}"#).expect("json");
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":[1,{"p":2,"q":1}],"y":2},"b":1}"#).expect("json");
        assert_eq!(canonical(&a), canonical(&b));
        assert_ne!(canonical(&a), canonical(&json!({"b": 2})));
    }

    #[test]
    fn keys_are_strings_or_integers() {
        assert_eq!(item_key(&json!({"id": "r-1"}), "id"), Ok("r-1".into()));
        assert_eq!(item_key(&json!({"id": 42}), "id"), Ok("42".into()));
        for bad in [
            json!({"id": 1.5}),
            json!({"id": null}),
            json!({"id": ""}),
            json!({"other": 1}),
            json!([1]),
        ] {
            assert!(item_key(&bad, "id").is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_outputs() {
        assert!(name_ok("reviews:shop-1"));
        assert!(!name_ok("a/b"));
        assert!(!name_ok(""));
        let bad = Output {
            dataset: "no spaces".into(),
            key: String::new(),
            mode: OutputMode::Snapshot,
            max_gone: Some(1.5),
        };
        let fields: Vec<_> = validate_output(&bad, "output")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["output.dataset", "output.key", "output.max_gone"]);
    }

    #[test]
    fn the_gone_share_is_bounded() {
        let mut output = Output {
            dataset: "reviews".into(),
            key: "id".into(),
            mode: OutputMode::Snapshot,
            max_gone: None,
        };
        assert!(!output.refuses_gone(5, 10), "half may go by default");
        assert!(output.refuses_gone(6, 10));
        assert!(
            output.refuses_gone(1, 1),
            "a run that keeps nothing of one row"
        );
        assert!(!output.refuses_gone(0, 0));
        output.max_gone = Some(1.0);
        assert!(!output.refuses_gone(10, 10), "1 forces the run through");
        output.max_gone = Some(0.0);
        assert!(output.refuses_gone(1, 1000), "0: no row may go");
        output.mode = OutputMode::Merge;
        assert!(!output.refuses_gone(1, 1), "merge runs mark nothing gone");
    }

    #[test]
    fn csv_cells() {
        assert_eq!(csv_cell(None), "");
        assert_eq!(csv_cell(Some(&json!("a,b"))), "a,b");
        assert_eq!(csv_cell(Some(&json!(4.5))), "4.5");
        assert_eq!(csv_cell(Some(&json!({"a": 1}))), r#"{"a":1}"#);
    }
}

//! Datasets: `GET /v1/datasets[/{name}]`, the items in pages, the runs that fed them, and
//! the whole dataset exported as JSON, JSONL or CSV. An export is streamed a page of rows
//! at a time, so a dataset of a million rows costs the server one page of memory.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use ferry_core::FieldError;
use ferry_core::dataset::{
    self, DatasetInfo, DatasetItem, DatasetItemPage, DatasetList, DatasetRunList, ExportFormat,
};
use ferry_store::StoreError;

use super::routes::{Access, Routes};
use super::{
    ApiError, AppState, Json, Principal,
    query::{FromQuery, Limit, Param, ParamType, Query, limit_param, number, page_size},
};
use crate::app::DatasetReader;

const MAX_PAGE: u32 = 1_000;
/// Rows read per query while exporting: what one export holds in memory at a time.
const EXPORT_PAGE: u32 = 1_000;

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/datasets", Access::Read, list, |op| {
        op.id("listDatasets").summary("Datasets")
    })
    .get("/v1/datasets/{name}", Access::Read, one, |op| {
        op.id("getDataset").summary("A dataset")
    })
    .delete("/v1/datasets/{name}", Access::Write, remove, |op| {
        op.id("deleteDataset")
            .summary("Delete a dataset")
            .response_with::<204, (), _>(|r| r.description("Deleted, with its rows and runs."))
    })
    .get("/v1/datasets/{name}/items", Access::Read, items, |op| {
        op.id("listDatasetItems")
            .summary("A dataset's rows")
            .description("By key order of first sight; pages by `after`.")
    })
    .get("/v1/datasets/{name}/runs", Access::Read, runs, |op| {
        op.id("listDatasetRuns")
            .summary("A dataset's runs")
            .description("Newest first: each run's new, changed and gone rows.")
    })
    .get("/v1/datasets/{name}/export", Access::Read, export, |op| {
        op.id("exportDataset")
            .summary("Export a dataset")
            .description("Every row, streamed, as JSON, JSON lines or CSV.")
            .with(|op| {
                super::openapi::media(
                    op,
                    200,
                    &["application/json", "application/x-ndjson", "text/csv"],
                    "The rows in the asked format.",
                )
            })
    })
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<DatasetList>, ApiError> {
    Ok(Json(DatasetList {
        datasets: queue.datasets().list(&principal).await?,
    }))
}

async fn one(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Json<DatasetInfo>, ApiError> {
    Ok(Json(queue.datasets().get(&principal, &name).await?))
}

async fn remove(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    queue.datasets().delete(&principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `gone=include` lists rows a snapshot run marked gone too.
/// `gone`: rows no longer seen, included or not.
const GONE: Param = Param::new(
    "gone",
    ParamType::OneOf(&["include", "exclude"]),
    "Rows the last runs no longer saw: `exclude` (the default) or `include`.",
);

fn include_gone(value: &str) -> Result<bool, FieldError> {
    match value {
        "include" => Ok(true),
        "exclude" => Ok(false),
        _ => Err(FieldError::new("gone", "include or exclude")),
    }
}

/// `GET /v1/datasets/{name}/items`: a page of rows, gone ones too on request.
#[derive(Debug)]
struct ItemsQuery {
    after: i64,
    limit: u32,
    gone: bool,
}

impl Default for ItemsQuery {
    fn default() -> Self {
        Self {
            after: 0,
            limit: 100,
            gone: false,
        }
    }
}

impl FromQuery for ItemsQuery {
    const PARAMS: &'static [Param] = &[
        Param::new(
            "after",
            ParamType::Int {
                min: 0,
                max: i64::MAX,
            },
            "Rows after this seq (`next_after` of the page before).",
        ),
        limit_param(MAX_PAGE),
        GONE,
    ];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        match key {
            "after" => self.after = number(key, value, "an item seq")?,
            "limit" => self.limit = page_size(key, value, MAX_PAGE)?,
            _ => self.gone = include_gone(value)?,
        }
        Ok(())
    }
}

async fn items(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Query(ItemsQuery { after, limit, gone }): Query<ItemsQuery>,
) -> Result<Json<DatasetItemPage>, ApiError> {
    let items = queue
        .datasets()
        .items(&principal, &name, after, limit, gone)
        .await?;
    let next_after = items.last().map_or(after, |i| i.seq);
    Ok(Json(DatasetItemPage { items, next_after }))
}

async fn runs(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Query(Limit(page)): Query<Limit<100, MAX_PAGE>>,
) -> Result<Json<DatasetRunList>, ApiError> {
    Ok(Json(DatasetRunList {
        runs: queue.datasets().runs(&principal, &name, page).await?,
    }))
}

/// Why an export stopped halfway (the client sees the body end early; the log says why).
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Rows,
    End,
    Done,
}

/// An export in progress: where it is and what it writes.
struct Export {
    rows: DatasetReader,
    format: ExportFormat,
    columns: Arc<Vec<String>>,
    wrote_row: bool,
    phase: Phase,
}

impl Export {
    fn prelude(&self) -> Result<Vec<u8>, ExportError> {
        match self.format {
            ExportFormat::Json => Ok(b"[".to_vec()),
            ExportFormat::Jsonl => Ok(Vec::new()),
            ExportFormat::Csv => {
                let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
                w.write_record(self.columns.iter())?;
                Ok(w.into_inner()
                    .map_err(|e| csv::Error::from(e.into_error()))?)
            }
        }
    }

    fn rows(&mut self, items: &[DatasetItem]) -> Result<Vec<u8>, ExportError> {
        match self.format {
            ExportFormat::Json => {
                let mut out = Vec::with_capacity(items.len() * 128);
                for item in items {
                    if self.wrote_row {
                        out.push(b',');
                    }
                    self.wrote_row = true;
                    out.push(b'\n');
                    out.extend(serde_json::to_vec(&item.data).unwrap_or_default());
                }
                Ok(out)
            }
            ExportFormat::Jsonl => {
                let mut out = Vec::with_capacity(items.len() * 128);
                for item in items {
                    out.extend(serde_json::to_vec(&item.data).unwrap_or_default());
                    out.push(b'\n');
                }
                Ok(out)
            }
            ExportFormat::Csv => {
                let mut w =
                    csv::WriterBuilder::new().from_writer(Vec::with_capacity(items.len() * 128));
                for item in items {
                    w.write_record(
                        self.columns
                            .iter()
                            .map(|c| dataset::csv_cell(item.data.get(c))),
                    )?;
                }
                Ok(w.into_inner()
                    .map_err(|e| csv::Error::from(e.into_error()))?)
            }
        }
    }

    fn epilogue(&self) -> Vec<u8> {
        match self.format {
            ExportFormat::Json => b"\n]\n".to_vec(),
            ExportFormat::Jsonl | ExportFormat::Csv => Vec::new(),
        }
    }

    /// The next chunk of the body, or `None` at the end.
    async fn next(mut self) -> Result<Option<(Bytes, Self)>, ExportError> {
        loop {
            match self.phase {
                Phase::Start => {
                    self.phase = Phase::Rows;
                    let bytes = self.prelude()?;
                    if !bytes.is_empty() {
                        return Ok(Some((bytes.into(), self)));
                    }
                }
                Phase::Rows => {
                    let items = self.rows.next_page().await?;
                    if items.is_empty() {
                        self.phase = Phase::End;
                        continue;
                    }
                    let bytes = self.rows(&items)?;
                    return Ok(Some((bytes.into(), self)));
                }
                Phase::End => {
                    self.phase = Phase::Done;
                    let bytes = self.epilogue();
                    if !bytes.is_empty() {
                        return Ok(Some((bytes.into(), self)));
                    }
                }
                Phase::Done => return Ok(None),
            }
        }
    }
}

/// `GET /v1/datasets/{name}/export`: the format, the columns, gone rows or not.
#[derive(Debug, Default)]
struct ExportQuery {
    format: ExportFormat,
    fields: Option<Vec<String>>,
    gone: bool,
}

impl FromQuery for ExportQuery {
    const PARAMS: &'static [Param] = &[
        Param::new(
            "format",
            ParamType::OneOf(&["json", "jsonl", "ndjson", "csv"]),
            "`json` (one array, the default), `jsonl` or `ndjson` (one object per line) or \
             `csv`.",
        ),
        Param::text(
            "fields",
            "Only these fields, comma-separated, in this order.",
        ),
        GONE,
    ];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        match key {
            "format" => self.format = value.parse().map_err(|e: String| FieldError::new(key, e))?,
            "fields" => {
                let list: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
                if list.is_empty() {
                    return Err(FieldError::new(key, "a comma-separated list of fields"));
                }
                self.fields = Some(list);
            }
            _ => self.gone = include_gone(value)?,
        }
        Ok(())
    }
}

async fn export(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Query(ExportQuery {
        format,
        fields,
        gone,
    }): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let (info, rows) = queue
        .datasets()
        .reader(&principal, &name, gone, EXPORT_PAGE)
        .await?;
    // CSV columns: those asked for, or every top-level field (the key first).
    let columns = match fields {
        Some(fields) => fields,
        None if format == ExportFormat::Csv => {
            let mut fields = info.fields.clone();
            if let Some(at) = fields.iter().position(|f| *f == info.key) {
                let key = fields.remove(at);
                fields.insert(0, key);
            }
            fields
        }
        None => Vec::new(),
    };
    let file = format!("{}.{}", name.replace(':', "_"), format.as_str());
    let export = Export {
        rows,
        format,
        columns: Arc::new(columns),
        wrote_row: false,
        phase: Phase::Start,
    };
    let body = futures_util::stream::try_unfold(export, |export| async move {
        export.next().await.inspect_err(|e| {
            tracing::warn!(error = %e, "dataset export stopped");
        })
    });
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

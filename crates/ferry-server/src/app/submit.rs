//! Submitting jobs: the rules every submit follows, whoever asks (a client's `POST
//! /v1/jobs`, a batch, a schedule's tick). A spec is validated as a job of the asking
//! tenant, and every dataset it (or a job its chain will enqueue) writes to must be keyed
//! by the field it names; only then is anything stored.

use std::collections::HashMap;

use ferry_core::{FieldError, NewJob, TenantId, TraceParent, api::SubmitJob, dataset::Output};
use ferry_store::Inserted;
use tracing::Instrument;

use super::{AppError, AppResult, Principal};
use crate::Queue;

impl Queue {
    /// Validates `specs` as jobs of the principal's tenant (fields named under `jobs[i]`
    /// when `batch`), checks that the principal may submit their kinds and the datasets
    /// they write to, admits them under the tenant's quotas, and stores them. The jobs
    /// continue `trace` (the caller's `traceparent`), under a `submit` span.
    pub async fn submit_specs(
        &self,
        who: &Principal,
        specs: Vec<SubmitJob>,
        batch: bool,
        trace: Option<&TraceParent>,
    ) -> AppResult<Vec<Inserted>> {
        let (span, kept) = crate::traces::submit_span(who.tenant.as_str(), specs.len(), trace);
        self.submit_traced(who, specs, batch, kept)
            .instrument(span)
            .await
    }

    async fn submit_traced(
        &self,
        who: &Principal,
        mut specs: Vec<SubmitJob>,
        batch: bool,
        trace: Option<TraceParent>,
    ) -> AppResult<Vec<Inserted>> {
        specs.iter().try_for_each(|spec| who.check_job(spec))?;
        let tenant = &who.tenant;
        self.polite(tenant, &mut specs).await?;
        let mut jobs = self
            .validate(tenant, specs, batch)
            .await
            .map_err(AppError::Invalid)?;
        for job in &mut jobs {
            job.traceparent = trace.clone();
        }
        if let [job] = jobs.as_slice() {
            tracing::Span::current().record("job_id", tracing::field::display(job.id));
        }
        let outputs = jobs
            .iter()
            .enumerate()
            .flat_map(|(i, job)| {
                let prefix = if batch {
                    format!("jobs[{i}]")
                } else {
                    String::new()
                };
                outputs_of(job, &prefix)
            })
            .collect();
        self.check_output_keys(tenant, outputs).await?;
        self.admit(who, jobs.len()).await?;
        Ok(self.submit(&jobs).await?)
    }

    /// Refuses outputs that would key an existing dataset by another field (every row
    /// would come out new and the old ones gone): each `(field path, output)` is checked
    /// against the dataset it names.
    pub async fn check_output_keys(
        &self,
        tenant: &TenantId,
        outputs: Vec<(String, &Output)>,
    ) -> AppResult<()> {
        let mut keyed_by = HashMap::new();
        let mut errors = Vec::new();
        for (field, output) in outputs {
            if !keyed_by.contains_key(&output.dataset) {
                let key = self
                    .store()
                    .dataset_get(tenant, &output.dataset)
                    .await?
                    .map(|d| d.key);
                keyed_by.insert(output.dataset.clone(), key);
            }
            if let Some(Some(key)) = keyed_by.get(&output.dataset)
                && *key != output.key
            {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "dataset {:?} is keyed by {key:?}; delete it first to key it by {:?}",
                        output.dataset, output.key
                    ),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Invalid(errors))
        }
    }
}

/// The outputs of `job` and of every job its chain (`then`) will enqueue, each with the
/// path of its `output.key` under `prefix`: a chained job is checked now, like its parent,
/// since it is enqueued without further checks.
fn outputs_of<'a>(job: &'a NewJob, prefix: &str) -> Vec<(String, &'a Output)> {
    fn walk<'a>(
        output: Option<&'a Output>,
        then: &'a [SubmitJob],
        prefix: &str,
        into: &mut Vec<(String, &'a Output)>,
    ) {
        let at = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}.{name}")
            }
        };
        if let Some(output) = output {
            into.push((at("output.key"), output));
        }
        for (i, child) in then.iter().enumerate() {
            let then = child.then.as_deref().unwrap_or_default();
            walk(
                child.output.as_ref(),
                then,
                &at(&format!("then[{i}]")),
                into,
            );
        }
    }
    let mut outputs = Vec::new();
    walk(job.output.as_ref(), &job.then, prefix, &mut outputs);
    outputs
}

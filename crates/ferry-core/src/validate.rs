//! Turning what a client or worker sent into validated values, collecting every
//! problem with the JSON path of its field so one answer names them all.

use chrono::{DateTime, Duration, Utc};

use crate::{
    Backoff, FieldError, JobId, KindPattern, NewJob, TenantId,
    api::{ClaimRequest, FailError, SubmitJob},
};

/// Server-wide defaults for what a job spec leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefaults {
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub backoff: Backoff,
    /// How deep `then` chains may nest (default 8).
    pub max_chain_depth: u32,
    /// Server-side concurrency limits by key pattern (`concurrency_limits`).
    pub concurrency_rules: Vec<crate::flow::KeyRule>,
}

impl Default for JobDefaults {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            timeout_ms: 30 * 60 * 1000,
            backoff: Backoff::default(),
            max_chain_depth: 8,
            concurrency_rules: Vec::new(),
        }
    }
}

pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_KEY_LEN: usize = 64;
pub const MAX_LABEL_VALUE_LEN: usize = 256;
pub const MAX_PRIORITY: i32 = 1_000;
pub const MAX_ATTEMPTS: u32 = 1_000;
pub const MAX_TIMEOUT_MS: u64 = 7 * 24 * 3600 * 1000;
pub const MAX_DELAY_MS: u64 = 366 * 24 * 3600 * 1000;
pub const MAX_WORKER_ID_LEN: usize = 128;
pub const MAX_CLAIM_PATTERNS: usize = 64;
pub const MAX_CLAIM_JOBS: u32 = 1_000;
pub const MAX_ERROR_CODE_LEN: usize = 64;
pub const MAX_ERROR_MESSAGE_LEN: usize = 8 * 1024;
pub const MAX_PROGRESS_MESSAGE_LEN: usize = 2 * 1024;
pub const MAX_DEDUPE_KEY_LEN: usize = 256;
/// The most jobs one job's `then` enqueues (each child's own `then` counts on its own).
pub const MAX_THEN: usize = 100;

/// Field path helper: `prefix.name` or `name`.
fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Validates a label key: what survives in a `label=key:value` query string.
pub fn label_key_ok(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_LABEL_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
}

/// Validates `spec` into a job of `tenant` to insert. `prefix` is the JSON path of the
/// spec within the request (`""` or `jobs[3]`).
pub fn new_job(
    tenant: &TenantId,
    spec: SubmitJob,
    defaults: &JobDefaults,
    now: DateTime<Utc>,
    prefix: &str,
) -> Result<NewJob, Vec<FieldError>> {
    let mut errors = Vec::new();
    let kind = match spec.kind.parse::<crate::Kind>() {
        Ok(kind) => Some(kind),
        Err(e) => {
            errors.push(FieldError::new(path(prefix, "kind"), e.to_string()));
            None
        }
    };
    let labels = spec.labels.unwrap_or_default();
    if labels.len() > MAX_LABELS {
        errors.push(FieldError::new(
            path(prefix, "labels"),
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    for (key, value) in &labels {
        if !label_key_ok(key) {
            errors.push(FieldError::new(
                path(prefix, &format!("labels.{key}")),
                format!(
                    "label keys are 1-{MAX_LABEL_KEY_LEN} characters of letters, digits, '_', '-', '.', '/'"
                ),
            ));
        }
        if value.len() > MAX_LABEL_VALUE_LEN {
            errors.push(FieldError::new(
                path(prefix, &format!("labels.{key}")),
                format!("label values are at most {MAX_LABEL_VALUE_LEN} bytes"),
            ));
        }
    }
    let priority = spec.priority.unwrap_or(0);
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        errors.push(FieldError::new(
            path(prefix, "priority"),
            format!("must be between -{MAX_PRIORITY} and {MAX_PRIORITY}"),
        ));
    }
    let run_at = match (spec.run_at, spec.delay_ms) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                path(prefix, "delay_ms"),
                "give run_at or delay_ms, not both",
            ));
            now
        }
        (Some(at), None) => at.max(now),
        (None, Some(delay)) if delay > MAX_DELAY_MS => {
            errors.push(FieldError::new(
                path(prefix, "delay_ms"),
                format!("must be at most {MAX_DELAY_MS} (366 days)"),
            ));
            now
        }
        (None, Some(delay)) => now + Duration::milliseconds(delay as i64),
        (None, None) => now,
    };
    let max_attempts = spec.max_attempts.unwrap_or(defaults.max_attempts);
    if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
        errors.push(FieldError::new(
            path(prefix, "max_attempts"),
            format!("must be between 1 and {MAX_ATTEMPTS}"),
        ));
    }
    let timeout_ms = spec.timeout_ms.unwrap_or(defaults.timeout_ms);
    if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        errors.push(FieldError::new(
            path(prefix, "timeout_ms"),
            format!("must be between 1 and {MAX_TIMEOUT_MS} (7 days)"),
        ));
    }
    let backoff = spec.backoff.unwrap_or(defaults.backoff);
    if backoff.base_ms == 0 || backoff.base_ms > backoff.max_ms || backoff.max_ms > MAX_TIMEOUT_MS {
        errors.push(FieldError::new(
            path(prefix, "backoff"),
            format!("need 1 <= base_ms <= max_ms <= {MAX_TIMEOUT_MS}"),
        ));
    }
    if let Some(key) = &spec.dedupe_key
        && (key.is_empty() || key.len() > MAX_DEDUPE_KEY_LEN || key.chars().any(char::is_control))
    {
        errors.push(FieldError::new(
            path(prefix, "dedupe_key"),
            format!("1-{MAX_DEDUPE_KEY_LEN} bytes without control characters"),
        ));
    }
    if spec.dedupe_ttl_ms.is_some() && spec.dedupe_key.is_none() {
        errors.push(FieldError::new(
            path(prefix, "dedupe_ttl_ms"),
            "goes with dedupe_key",
        ));
    }
    if spec.dedupe_ttl_ms.is_some_and(|ttl| ttl > MAX_DELAY_MS) {
        errors.push(FieldError::new(
            path(prefix, "dedupe_ttl_ms"),
            format!("must be at most {MAX_DELAY_MS} (366 days)"),
        ));
    }
    let mut then = Vec::new();
    let children = spec.then.unwrap_or_default();
    if children.len() > MAX_THEN {
        errors.push(FieldError::new(
            path(prefix, "then"),
            format!("at most {MAX_THEN} jobs"),
        ));
    }
    for (i, child) in children.into_iter().take(MAX_THEN).enumerate() {
        let child_path = path(prefix, &format!("then[{i}]"));
        if defaults.max_chain_depth == 0 {
            errors.push(FieldError::new(
                path(prefix, "then"),
                "chains are nested deeper than the server allows",
            ));
            break;
        }
        let nested = JobDefaults {
            max_chain_depth: defaults.max_chain_depth - 1,
            ..defaults.clone()
        };
        // Validated now (so a bad chain is refused at submit), enqueued at completion: keep
        // the spec with the defaults filled in.
        match new_job(tenant, child.clone(), &nested, now, &child_path) {
            Ok(valid) => then.push(SubmitJob {
                max_attempts: Some(valid.max_attempts),
                timeout_ms: Some(valid.timeout_ms),
                backoff: Some(valid.backoff),
                then: (!valid.then.is_empty()).then_some(valid.then),
                // The server's rules were applied now; the child keeps what they gave.
                concurrency: valid.concurrency.map(|c| crate::flow::ConcurrencySpec {
                    key: c.key,
                    limit: Some(c.limit),
                }),
                ..child
            }),
            Err(e) => errors.extend(e),
        }
    }
    // A browser recipe is checked now, not when a worker runs it.
    if kind
        .as_ref()
        .is_some_and(|k| k.as_str() == crate::recipe::BROWSER_RUN)
        && let Err(e) = crate::recipe::validate(&spec.payload, &path(prefix, "payload"))
    {
        errors.extend(
            e.into_iter()
                .map(|e| e.with_code(crate::ErrorCode::InvalidRecipe)),
        );
    }
    // An `http.request`'s proxy too: a password in clear is refused before it is stored.
    if kind.as_ref().is_some_and(|k| k.as_str() == "http.request")
        && let Some(proxy) = spec.payload.get("proxy").filter(|p| !p.is_null())
    {
        let bad = match proxy.as_str() {
            Some(text) => text
                .parse::<crate::proxy::ProxyUrl>()
                .err()
                .map(|e| e.to_string()),
            None => Some("a proxy URL: http://host:port or socks5://host:port".to_owned()),
        };
        if let Some(message) = bad {
            errors.push(FieldError::new(path(prefix, "payload.proxy"), message));
        }
    }
    let concurrency = crate::flow::concurrency(
        spec.concurrency.as_ref(),
        kind.as_ref(),
        &defaults.concurrency_rules,
        &path(prefix, "concurrency"),
        &mut errors,
    );
    if let Some(output) = &spec.output {
        errors.extend(crate::dataset::validate_output(
            output,
            &path(prefix, "output"),
        ));
    }
    if let Some(rate) = &spec.rate_limit {
        crate::flow::rate_limit(rate, &path(prefix, "rate_limit"), &mut errors);
    }
    match kind {
        Some(kind) if errors.is_empty() => Ok(NewJob {
            id: JobId::new(),
            tenant_id: tenant.as_str().to_owned(),
            kind,
            payload: if spec.payload.is_null() {
                serde_json::json!({})
            } else {
                spec.payload
            },
            labels,
            priority,
            run_at,
            max_attempts,
            timeout_ms,
            backoff,
            dedupe_key: spec.dedupe_key,
            dedupe_ttl_ms: spec.dedupe_ttl_ms,
            batch: None,
            then,
            parent_id: None,
            input: None,
            concurrency,
            rate_limit: spec.rate_limit,
            output: spec.output,
            traceparent: None,
        }),
        _ => Err(errors),
    }
}

/// Bounds the server puts on claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseBounds {
    pub default_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
    /// Longest a claim long-polls; longer requests are shortened to this.
    pub max_wait_ms: u64,
}

impl Default for LeaseBounds {
    fn default() -> Self {
        Self {
            default_ms: 30_000,
            min_ms: 1_000,
            max_ms: 10 * 60 * 1000,
            max_wait_ms: 30_000,
        }
    }
}

/// A claim the server can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub worker_id: String,
    pub kinds: Vec<KindPattern>,
    pub max_jobs: u32,
    pub wait_ms: u64,
    pub lease_ms: u64,
}

pub fn claim(req: ClaimRequest, bounds: &LeaseBounds) -> Result<Claim, Vec<FieldError>> {
    let mut errors = Vec::new();
    if req.worker_id.is_empty()
        || req.worker_id.len() > MAX_WORKER_ID_LEN
        || req.worker_id.chars().any(char::is_control)
    {
        errors.push(FieldError::new(
            "worker_id",
            format!("1-{MAX_WORKER_ID_LEN} printable characters"),
        ));
    }
    if req.kinds.is_empty() || req.kinds.len() > MAX_CLAIM_PATTERNS {
        errors.push(FieldError::new(
            "kinds",
            format!("give 1-{MAX_CLAIM_PATTERNS} kind patterns"),
        ));
    }
    let mut kinds = Vec::with_capacity(req.kinds.len());
    for (i, k) in req.kinds.iter().enumerate() {
        match k.parse::<KindPattern>() {
            Ok(p) => kinds.push(p),
            Err(e) => errors.push(FieldError::new(format!("kinds[{i}]"), e.to_string())),
        }
    }
    let max_jobs = req.max_jobs.unwrap_or(1);
    if !(1..=MAX_CLAIM_JOBS).contains(&max_jobs) {
        errors.push(FieldError::new(
            "max_jobs",
            format!("must be between 1 and {MAX_CLAIM_JOBS}"),
        ));
    }
    let lease_ms = req.lease_ms.unwrap_or(bounds.default_ms);
    if !(bounds.min_ms..=bounds.max_ms).contains(&lease_ms) {
        errors.push(FieldError::new(
            "lease_ms",
            format!("must be between {} and {}", bounds.min_ms, bounds.max_ms),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Claim {
        worker_id: req.worker_id,
        kinds,
        max_jobs,
        wait_ms: req.wait_ms.unwrap_or(0).min(bounds.max_wait_ms),
        lease_ms,
    })
}

/// Checks a worker's `fail` error.
pub fn fail_error(error: &FailError) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let code_ok = !error.code.is_empty()
        && error.code.len() <= MAX_ERROR_CODE_LEN
        && error
            .code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !code_ok {
        errors.push(FieldError::new(
            "error.code",
            format!("UPPER_SNAKE_CASE, 1-{MAX_ERROR_CODE_LEN} characters"),
        ));
    }
    if error.message.len() > MAX_ERROR_MESSAGE_LEN {
        errors.push(FieldError::new(
            "error.message",
            format!("at most {MAX_ERROR_MESSAGE_LEN} bytes"),
        ));
    }
    if error.retry_after_ms.is_some_and(|ms| ms > MAX_DELAY_MS) {
        errors.push(FieldError::new(
            "error.retry_after_ms",
            format!("at most {MAX_DELAY_MS}"),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: serde_json::Value) -> SubmitJob {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn fields(result: Result<NewJob, Vec<FieldError>>) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn defaults_fill_in() {
        let now = Utc::now();
        let job = new_job(
            &TenantId::default(),
            spec(json!({"kind": "http.request"})),
            &JobDefaults::default(),
            now,
            "",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(job.run_at, now);
        assert_eq!(job.max_attempts, 3);
        assert_eq!(job.payload, json!({}));
    }

    #[test]
    fn every_bad_field_is_named() {
        let now = Utc::now();
        let d = JobDefaults::default();
        let check = |v, expected: &[&str]| {
            assert_eq!(
                fields(new_job(&TenantId::default(), spec(v), &d, now, "jobs[1]")),
                expected
            )
        };
        check(json!({"kind": "bad kind"}), &["jobs[1].kind"]);
        check(
            json!({"kind": "a", "priority": 5000, "max_attempts": 0}),
            &["jobs[1].priority", "jobs[1].max_attempts"],
        );
        check(
            json!({"kind": "a", "delay_ms": 5, "run_at": "2030-01-01T00:00:00Z"}),
            &["jobs[1].delay_ms"],
        );
        check(
            json!({"kind": "a", "labels": {"ok": "x", "bad key": "y"}}),
            &["jobs[1].labels.bad key"],
        );
        check(
            json!({"kind": "a", "timeout_ms": 0}),
            &["jobs[1].timeout_ms"],
        );
        check(
            json!({"kind": "a", "backoff": {"base_ms": 10, "max_ms": 5}}),
            &["jobs[1].backoff"],
        );
        check(
            json!({"kind": "a", "dedupe_key": ""}),
            &["jobs[1].dedupe_key"],
        );
        check(
            json!({"kind": "a", "then": [{"kind": "b"}, {"kind": "bad kind"}]}),
            &["jobs[1].then[1].kind"],
        );
        check(
            json!({"kind": "a", "then": [{"kind": "b", "priority": 5000}]}),
            &["jobs[1].then[0].priority"],
        );
        check(
            json!({"kind": "a", "dedupe_key": "x".repeat(257)}),
            &["jobs[1].dedupe_key"],
        );
        check(
            json!({"kind": "a", "dedupe_ttl_ms": 5}),
            &["jobs[1].dedupe_ttl_ms"],
        );
    }

    #[test]
    fn chains_are_bounded_and_keep_defaults() {
        let now = Utc::now();
        let shallow = JobDefaults {
            max_chain_depth: 2,
            ..JobDefaults::default()
        };
        let deep = json!({"kind": "a", "then": [{"kind": "b", "then": [{"kind": "c", "then": [{"kind": "d"}]}]}]});
        assert_eq!(
            fields(new_job(&TenantId::default(), spec(deep), &shallow, now, "")),
            ["then[0].then[0].then"]
        );
        // Wide as well as deep: one job enqueues at most MAX_THEN.
        let wide = json!({"kind": "a", "then": vec![json!({"kind": "b"}); MAX_THEN + 1]});
        assert_eq!(
            fields(new_job(&TenantId::default(), spec(wide), &shallow, now, "")),
            ["then"]
        );
        let ok = new_job(
            &TenantId::default(),
            spec(json!({"kind": "a", "then": [{"kind": "b"}, {"kind": "c", "payload": [1]}]})),
            &shallow,
            now,
            "",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            ok.then[0].max_attempts,
            Some(3),
            "defaults filled in at submit"
        );
        let children = NewJob::children(
            ok.id,
            &TenantId::default(),
            None,
            ok.then,
            &json!({"post": 1}),
            &shallow,
            now,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        // The result goes beside each payload, which stays as submitted (of any shape).
        let given: Vec<_> = children
            .iter()
            .map(|c| (&c.payload, c.input.as_ref(), c.parent_id))
            .collect();
        let input = json!({"post": 1});
        assert_eq!(
            given,
            [
                (&json!({}), Some(&input), Some(ok.id)),
                (&json!([1]), Some(&input), Some(ok.id)),
            ]
        );
    }

    #[test]
    fn unknown_fields_do_not_parse() {
        assert!(serde_json::from_value::<SubmitJob>(json!({"kind": "a", "colour": 1})).is_err());
    }

    #[test]
    fn claims() {
        let b = LeaseBounds::default();
        let req = |v| serde_json::from_value::<ClaimRequest>(v).unwrap_or_else(|e| panic!("{e}"));
        let ok = claim(
            req(json!({"worker_id": "w1", "kinds": ["http.*"], "wait_ms": 999999})),
            &b,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((ok.max_jobs, ok.wait_ms, ok.lease_ms), (1, 30_000, 30_000));
        let bad = claim(
            req(json!({"worker_id": "", "kinds": ["http*"], "max_jobs": 0, "lease_ms": 5})),
            &b,
        )
        .err()
        .unwrap_or_default();
        let names: Vec<_> = bad.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["worker_id", "kinds[0]", "max_jobs", "lease_ms"]);
    }
}

//! Flow-control keys: how many jobs sharing a key may run at once (`concurrency`) and how
//! often jobs sharing a key may start (`rate_limit`). The store enforces both when it
//! hands out jobs; this module only says what a valid key and limit are.

use serde::{Deserialize, Serialize};

use crate::{FieldError, KindPattern};

pub const MAX_FLOW_KEY_LEN: usize = 255;
pub const MAX_CONCURRENCY_LIMIT: u32 = 10_000;
/// The longest rate interval or window: one day.
pub const MAX_RATE_WINDOW_MS: u64 = 24 * 3600 * 1000;
pub const MAX_RATE_MAX: u32 = 100_000;

/// `concurrency` of a job spec: at most `limit` jobs with `key` run at once. `limit` may be
/// left out when the server configures one for the key (`concurrency_limits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencySpec {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A job's concurrency key with its limit resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Concurrency {
    pub key: String,
    pub limit: u32,
}

/// `rate_limit` of a job: starts of jobs sharing `key` are at least `interval_ms` apart,
/// and/or at most `max` of them start in any `per_ms` window. Both may be given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ms: Option<u64>,
}

/// A server-side concurrency limit for keys matching `pattern`: an exact key, or a prefix
/// ending in `*` (`account:*`). Patterns starting with `kind:` also give jobs *without*
/// a key of their own the key `kind:<pattern>` when their kind matches the rest
/// (`kind:report.*` → at most `limit` `report.*` jobs at once, all together).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyRule {
    pub pattern: String,
    pub limit: u32,
}

impl KeyRule {
    /// Parses `pattern=limit` (the environment's form).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (pattern, limit) = text
            .rsplit_once('=')
            .ok_or_else(|| format!("`{text}`: expected pattern=limit"))?;
        let limit = limit
            .trim()
            .parse()
            .map_err(|_| format!("`{text}`: the limit is not a whole number"))?;
        Self::new(pattern.trim(), limit)
    }

    pub fn new(pattern: &str, limit: u32) -> Result<Self, String> {
        if !key_ok(pattern) {
            return Err(format!(
                "`{pattern}`: key patterns are 1-{MAX_FLOW_KEY_LEN} bytes without control characters"
            ));
        }
        if pattern[..pattern.len() - 1].contains('*') {
            return Err(format!("`{pattern}`: `*` may only end a key pattern"));
        }
        if let Some(kinds) = pattern.strip_prefix("kind:") {
            kinds
                .parse::<KindPattern>()
                .map_err(|e| format!("`{pattern}`: {e}"))?;
        }
        if !(1..=MAX_CONCURRENCY_LIMIT).contains(&limit) {
            return Err(format!(
                "`{pattern}`: the limit must be between 1 and {MAX_CONCURRENCY_LIMIT}"
            ));
        }
        Ok(Self {
            pattern: pattern.to_owned(),
            limit,
        })
    }

    pub fn matches(&self, key: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == self.pattern,
        }
    }

    /// Whether this is a `kind:` rule whose kind pattern matches `kind`.
    fn covers_kind(&self, kind: &crate::Kind) -> bool {
        self.pattern
            .strip_prefix("kind:")
            .and_then(|p| p.parse::<KindPattern>().ok())
            .is_some_and(|p| p.matches(kind.as_str()))
    }
}

/// The most specific rule (longest pattern) matching `key`.
pub fn rule_for<'a>(rules: &'a [KeyRule], key: &str) -> Option<&'a KeyRule> {
    rules
        .iter()
        .filter(|r| r.matches(key))
        .max_by_key(|r| r.pattern.len())
}

fn key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_FLOW_KEY_LEN && !key.chars().any(char::is_control)
}

/// Validates a job's `concurrency` against the server's rules. A job without a key gets
/// the one of a matching `kind:` rule.
pub fn concurrency(
    spec: Option<&ConcurrencySpec>,
    kind: Option<&crate::Kind>,
    rules: &[KeyRule],
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Concurrency> {
    let Some(spec) = spec else {
        let kind = kind?;
        let rule = rules
            .iter()
            .filter(|r| r.covers_kind(kind))
            .max_by_key(|r| r.pattern.len())?;
        return Some(Concurrency {
            key: rule.pattern.clone(),
            limit: rule.limit,
        });
    };
    if !key_ok(&spec.key) {
        errors.push(FieldError::new(
            format!("{field}.key"),
            format!("1-{MAX_FLOW_KEY_LEN} bytes without control characters"),
        ));
        return None;
    }
    if let Some(limit) = spec.limit
        && !(1..=MAX_CONCURRENCY_LIMIT).contains(&limit)
    {
        errors.push(FieldError::new(
            format!("{field}.limit"),
            format!("must be between 1 and {MAX_CONCURRENCY_LIMIT}"),
        ));
        return None;
    }
    // The server's limit for the key is a ceiling: a job may ask for less, never more.
    let limit = match (spec.limit, rule_for(rules, &spec.key)) {
        (Some(mine), Some(rule)) => mine.min(rule.limit),
        (Some(mine), None) => mine,
        (None, Some(rule)) => rule.limit,
        (None, None) => {
            errors.push(FieldError::new(
                format!("{field}.limit"),
                "required: the server configures no limit for this key",
            ));
            return None;
        }
    };
    Some(Concurrency {
        key: spec.key.clone(),
        limit,
    })
}

/// Validates a job's `rate_limit`.
pub fn rate_limit(spec: &RateLimit, field: &str, errors: &mut Vec<FieldError>) -> bool {
    let before = errors.len();
    if !key_ok(&spec.key) {
        errors.push(FieldError::new(
            format!("{field}.key"),
            format!("1-{MAX_FLOW_KEY_LEN} bytes without control characters"),
        ));
    }
    let window = |ms: Option<u64>| ms.is_none_or(|ms| (1..=MAX_RATE_WINDOW_MS).contains(&ms));
    if !window(spec.interval_ms) {
        errors.push(FieldError::new(
            format!("{field}.interval_ms"),
            format!("must be between 1 and {MAX_RATE_WINDOW_MS} (one day)"),
        ));
    }
    if !window(spec.per_ms) {
        errors.push(FieldError::new(
            format!("{field}.per_ms"),
            format!("must be between 1 and {MAX_RATE_WINDOW_MS} (one day)"),
        ));
    }
    if spec
        .max
        .is_some_and(|max| !(1..=MAX_RATE_MAX).contains(&max))
    {
        errors.push(FieldError::new(
            format!("{field}.max"),
            format!("must be between 1 and {MAX_RATE_MAX}"),
        ));
    }
    match (spec.interval_ms, spec.max, spec.per_ms) {
        (_, Some(_), None) => errors.push(FieldError::new(
            format!("{field}.per_ms"),
            "goes with max: at most `max` starts per `per_ms` milliseconds",
        )),
        (_, None, Some(_)) => errors.push(FieldError::new(
            format!("{field}.max"),
            "goes with per_ms: at most `max` starts per `per_ms` milliseconds",
        )),
        (None, None, None) => errors.push(FieldError::new(
            field.to_owned(),
            "give interval_ms, or max with per_ms (or both)",
        )),
        _ => {}
    }
    errors.len() == before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<KeyRule> {
        vec![
            KeyRule::new("account:*", 2).expect("valid"),
            KeyRule::new("account:vip", 5).expect("valid"),
            KeyRule::new("kind:report.*", 1).expect("valid"),
        ]
    }

    fn spec(key: &str, limit: Option<u32>) -> ConcurrencySpec {
        ConcurrencySpec {
            key: key.to_owned(),
            limit,
        }
    }

    #[test]
    fn server_limits_are_ceilings_and_defaults() {
        let mut errors = Vec::new();
        let resolve = |s: &ConcurrencySpec, errors: &mut Vec<FieldError>| {
            concurrency(Some(s), None, &rules(), "concurrency", errors).map(|c| c.limit)
        };
        assert_eq!(resolve(&spec("account:42", None), &mut errors), Some(2));
        assert_eq!(resolve(&spec("account:42", Some(9)), &mut errors), Some(2));
        assert_eq!(resolve(&spec("account:42", Some(1)), &mut errors), Some(1));
        assert_eq!(resolve(&spec("account:vip", None), &mut errors), Some(5));
        assert_eq!(resolve(&spec("other", Some(3)), &mut errors), Some(3));
        assert!(errors.is_empty());
        assert_eq!(resolve(&spec("other", None), &mut errors), None);
        assert_eq!(resolve(&spec("x", Some(0)), &mut errors), None);
        assert_eq!(resolve(&spec("", Some(1)), &mut errors), None);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["concurrency.limit", "concurrency.limit", "concurrency.key"]
        );
    }

    #[test]
    fn kind_rules_key_jobs_without_one() {
        let mut errors = Vec::new();
        let kind: crate::Kind = "report.daily".parse().expect("valid");
        let got = concurrency(None, Some(&kind), &rules(), "c", &mut errors);
        assert_eq!(
            got,
            Some(Concurrency {
                key: "kind:report.*".into(),
                limit: 1
            })
        );
        let other: crate::Kind = "mail.send".parse().expect("valid");
        assert_eq!(
            concurrency(None, Some(&other), &rules(), "c", &mut errors),
            None
        );
    }

    #[test]
    fn rules_parse_and_refuse_nonsense() {
        assert_eq!(
            KeyRule::parse("account:*=1").expect("valid"),
            KeyRule::new("account:*", 1).expect("valid")
        );
        assert!(KeyRule::parse("account:*").is_err());
        assert!(KeyRule::parse("a*b=1").is_err());
        assert!(KeyRule::parse("a=0").is_err());
        assert!(KeyRule::parse("kind:Not A Kind=1").is_err());
    }

    #[test]
    fn rate_limits_need_a_whole_rule() {
        let check = |interval_ms, max, per_ms| {
            let mut errors = Vec::new();
            let spec = RateLimit {
                key: "api".into(),
                interval_ms,
                max,
                per_ms,
            };
            rate_limit(&spec, "rate_limit", &mut errors);
            errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert!(check(Some(300), None, None).is_empty());
        assert!(check(None, Some(10), Some(1000)).is_empty());
        assert!(check(Some(300), Some(10), Some(1000)).is_empty());
        assert_eq!(check(None, None, None), ["rate_limit"]);
        assert_eq!(check(None, Some(10), None), ["rate_limit.per_ms"]);
        assert_eq!(check(Some(0), None, None), ["rate_limit.interval_ms"]);
        assert_eq!(
            check(Some(u64::MAX), None, None),
            ["rate_limit.interval_ms"]
        );
        assert_eq!(check(None, Some(0), Some(5)), ["rate_limit.max"]);
    }
}

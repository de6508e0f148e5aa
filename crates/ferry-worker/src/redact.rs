//! Secret values kept out of everything a job reports: a [`Redactor`] collects the values
//! of the secrets an attempt used and replaces them — as written, percent-encoded (in a
//! URL) and JSON-escaped — with `[REDACTED]` in its items, progress messages, result,
//! error and text artifacts before they leave the worker. Also the worker's own secrets
//! from its environment (`FERRY_SECRET_NAME`, bound by `FERRY_SECRET_DOMAINS_NAME`).

use std::sync::{Arc, Mutex};

use ferry_core::{
    BoundSecret,
    recipe::{SECRET_DOMAINS_ENV_PREFIX, SECRET_ENV_PREFIX},
};
use serde_json::Value;

/// What a secret's value becomes in reports.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this are not searched for (they would match ordinary text).
pub const MIN_REDACTED_LEN: usize = 4;

/// The secret values one attempt used (clones share them).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every form of every value, longest first.
    forms: Arc<Mutex<Vec<String>>>,
}

impl Redactor {
    /// Keeps `value` out of what the attempt reports from now on.
    pub fn add(&self, value: &str) {
        if value.chars().count() < MIN_REDACTED_LEN {
            return;
        }
        let json = serde_json::to_string(value).unwrap_or_default();
        let candidates = [
            value.to_owned(),
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
            url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
            json.trim_matches('"').to_owned(),
        ];
        let mut forms = self.lock();
        for form in candidates {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.forms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// `text` with every known value replaced.
    pub fn text(&self, text: &str) -> String {
        let forms = self.lock();
        let mut out = text.to_owned();
        for form in forms.iter() {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), REDACTED);
            }
        }
        out
    }

    /// `value` with every known value replaced in its strings and keys.
    pub fn value(&self, value: Value) -> Value {
        if self.is_empty() {
            return value;
        }
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.text(&k), self.value(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// A file's bytes: text (UTF-8) redacted, anything else (an image) as it is.
    pub fn bytes(&self, content_type: &str, bytes: Vec<u8>) -> Vec<u8> {
        let textual = content_type.starts_with("text/") || content_type.contains("json");
        if self.is_empty() || !textual {
            return bytes;
        }
        match String::from_utf8(bytes) {
            Ok(text) => self.text(&text).into_bytes(),
            Err(e) => e.into_bytes(),
        }
    }
}

/// `{{secret.NAME}}` from this process's environment: `FERRY_SECRET_NAME`, bound to the
/// domains in `FERRY_SECRET_DOMAINS_NAME` (none: used nowhere).
pub fn env_secret(name: &str) -> Option<BoundSecret> {
    // `DOMAINS_…` names the bindings, not a secret.
    if name.starts_with("DOMAINS_") {
        return None;
    }
    let value = std::env::var(format!("{SECRET_ENV_PREFIX}{name}")).ok()?;
    let domains = std::env::var(format!("{SECRET_DOMAINS_ENV_PREFIX}{name}"))
        .unwrap_or_default()
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .filter_map(|d| match d.parse() {
            Ok(rule) => Some(rule),
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "ignoring a bad domain of a secret");
                None
            }
        })
        .collect();
    Some(BoundSecret::new(value, domains))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_form_of_a_value_is_replaced() {
        let r = Redactor::default();
        r.add("p@ss w\"rd");
        r.add("abc");
        let v = r.value(json!({
            "plain": "x p@ss w\"rd y",
            "url": "https://a.example/?pw=p%40ss%20w%22rd",
            "form": "pw=p%40ss+w%22rd",
            "p@ss w\"rd": ["abc"],
        }));
        assert_eq!(
            v,
            json!({
                "plain": "x [REDACTED] y",
                "url": "https://a.example/?pw=[REDACTED]",
                "form": "pw=[REDACTED]",
                "[REDACTED]": ["abc"],
            })
        );
        let html = r.bytes("text/html", br#"{"v": "p@ss w\"rd"}"#.to_vec());
        assert_eq!(html, br#"{"v": "[REDACTED]"}"#.to_vec());
        let png = r.bytes("image/png", b"p@ss w\"rd".to_vec());
        assert_eq!(png, b"p@ss w\"rd".to_vec());
    }
}

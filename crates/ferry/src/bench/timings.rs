//! Where the server spent a run's time, read from its own `GET /metrics`: for each store
//! operation of the job path and each route, how many there were and their mean duration.
//! A bench prints it beside its rates, so a change is seen where it acts.

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

use ferry_core::Secret;

/// The server's store operations and routes (all methods of a route together):
/// `{"store": {op: {n, mean_ms}}, "http": {route: …}}`.
pub(super) async fn read(base: &str, token: &Secret) -> Result<Value> {
    let answer = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(token.expose())
        .send()
        .await?;
    let status = answer.status();
    if !status.is_success() {
        bail!("/metrics answered {status}");
    }
    let text = answer.text().await?;
    Ok(json!({
        "store": means(&text, "ferry_store_operation_duration_seconds", "op"),
        "http": means(&text, "ferry_http_request_duration_seconds", "route"),
    }))
}

/// `{label: {"n", "mean_ms"}}` of histogram `name`, summed over its other labels.
fn means(text: &str, name: &str, label: &str) -> Value {
    let mut sums: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    let (sum_prefix, count_prefix) = (format!("{name}_sum{{"), format!("{name}_count{{"));
    for line in text.lines() {
        let (is_sum, rest) = if let Some(rest) = line.strip_prefix(&sum_prefix) {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix(&count_prefix) {
            (false, rest)
        } else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let Some(key) = label_value(labels, label) else {
            continue;
        };
        let entry = sums.entry(key).or_default();
        if is_sum {
            entry.0 += value;
        } else {
            entry.1 += value;
        }
    }
    let mut out = Map::new();
    for (key, (sum, n)) in sums {
        if n > 0.0 {
            let mean_ms = (sum / n * 1000.0 * 1000.0).round() / 1000.0;
            out.insert(key, json!({"n": n as u64, "mean_ms": mean_ms}));
        }
    }
    Value::Object(out)
}

/// The value of `label="…"` in a Prometheus label set.
fn label_value(labels: &str, label: &str) -> Option<String> {
    let start = labels.find(&format!("{label}=\""))? + label.len() + 2;
    let end = labels[start..].find('"')?;
    Some(labels[start..start + end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_sum_over_other_labels() {
        let text = "\
x_sum{op=\"claim\",tenant=\"a\"} 0.5
x_count{op=\"claim\",tenant=\"a\"} 100
x_sum{op=\"claim\",tenant=\"b\"} 0.5
x_count{op=\"claim\",tenant=\"b\"} 100
x_bucket{op=\"claim\",le=\"1\"} 200
y_sum{op=\"claim\"} 9
";
        assert_eq!(
            means(text, "x", "op"),
            json!({"claim": {"n": 200, "mean_ms": 5.0}})
        );
    }
}

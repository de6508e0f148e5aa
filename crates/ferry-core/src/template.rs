//! `{{input.NAME}}` and `{{secret.NAME}}` in the text of a recipe's steps (and secrets in an
//! `http.request`'s headers and body): rendered on the worker, which has the secrets.

use std::collections::BTreeMap;

/// How a worker resolves `{{secret.NAME}}`: from its own environment.
pub const SECRET_ENV_PREFIX: &str = "FERRY_SECRET_";

/// The domains a worker's own secret may be sent to: `FERRY_SECRET_DOMAINS_NAME`, comma
/// separated (domains with their subdomains, or addresses).
pub const SECRET_DOMAINS_ENV_PREFIX: &str = "FERRY_SECRET_DOMAINS_";

/// Replaces `{{input.NAME}}` and `{{secret.NAME}}` in `text`. `secret` looks a secret up
/// (the worker reads its environment); an unknown name is an error naming it.
pub fn render(
    text: &str,
    inputs: &BTreeMap<String, String>,
    secret: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    render_with_vars(text, inputs, &BTreeMap::new(), secret)
}

/// [`render`], with `{{vars.NAME}}` too: what a recipe's `save_var` steps read earlier.
pub fn render_with_vars(
    text: &str,
    inputs: &BTreeMap<String, String>,
    vars: &BTreeMap<String, String>,
    secret: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("`{{` without a closing `}}`".to_owned());
        };
        let name = after[..end].trim();
        let value = if let Some(key) = name.strip_prefix("input.") {
            inputs
                .get(key)
                .cloned()
                .ok_or_else(|| format!("no input `{key}` (the recipe's `inputs` has none)"))?
        } else if let Some(key) = name.strip_prefix("secret.") {
            secret(key).ok_or_else(|| {
                format!("no secret `{key}` on this worker (set {SECRET_ENV_PREFIX}{key})")
            })?
        } else if let Some(key) = name.strip_prefix("vars.") {
            vars.get(key).cloned().ok_or_else(|| {
                format!("no var `{key}` (a save_var step before this one sets it)")
            })?
        } else {
            return Err(format!(
                "`{{{{{name}}}}}`: only {{{{input.NAME}}}}, {{{{vars.NAME}}}} and {{{{secret.NAME}}}} are known"
            ));
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Replaces only `{{secret.NAME}}` in `text` (other `{{…}}` stay as written: an
/// `http.request` body may be a template of its own), with the names it used.
pub fn render_secrets(
    text: &str,
    secret: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(text.len());
    let mut used = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        match name.strip_prefix("secret.") {
            Some(key) => {
                out.push_str(&rest[..start]);
                out.push_str(&secret(key).ok_or_else(|| format!("no secret `{key}`"))?);
                used.push(key.to_owned());
            }
            None => out.push_str(&rest[..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok((out, used))
}

/// The secret names a JSON value uses anywhere in its strings (`{{secret.NAME}}`).
pub fn secret_names(value: &serde_json::Value) -> Vec<String> {
    let names = std::cell::RefCell::new(Vec::<String>::new());
    let mut visit = vec![value];
    while let Some(v) = visit.pop() {
        match v {
            serde_json::Value::String(s) => {
                let _ = render_secrets(s, &|name| {
                    let mut names = names.borrow_mut();
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_owned());
                    }
                    Some(String::new())
                });
            }
            serde_json::Value::Array(items) => visit.extend(items),
            serde_json::Value::Object(map) => visit.extend(map.values()),
            _ => {}
        }
    }
    let mut names = names.into_inner();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_and_secrets_are_rendered() {
        let inputs = BTreeMap::from([("user".to_owned(), "demo".to_owned())]);
        let secret = |name: &str| (name == "PW").then(|| "hunter2".to_owned());
        assert_eq!(
            render("{{input.user}}:{{secret.PW}}", &inputs, &secret).as_deref(),
            Ok("demo:hunter2")
        );
        assert!(
            render("{{secret.NOPE}}", &inputs, &secret)
                .expect_err("unknown")
                .contains("FERRY_SECRET_NOPE")
        );
        assert_eq!(
            render_secrets("Bearer {{ secret.PW }} {{name}}", &secret),
            Ok(("Bearer hunter2 {{name}}".to_owned(), vec!["PW".to_owned()]))
        );
        assert!(render_secrets("{{secret.NOPE}}", &secret).is_err());
        let names = secret_names(&serde_json::json!({
            "steps": [{"fill": {"value": "{{secret.B}}"}}, {"goto": {"url": "{{input.x}}"}}],
            "headers": {"Authorization": "Bearer {{secret.A}} {{secret.B}}"}
        }));
        assert_eq!(names, ["A", "B"]);
    }
}

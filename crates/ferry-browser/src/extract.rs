//! `extract`: one script per page reads every row's raw fields; post-processing (trim,
//! regex, number, required) happens here, where it can be tested without a browser.

use std::collections::BTreeMap;

use ferry_core::recipe::{Field, Number, NumberType, Read};
use serde_json::{Map, Value};

use crate::BrowserError;

/// The script returning, for each element matching `list`, an object of raw field values
/// (strings, or null when a field's element is missing); for [`crate::dom::Doc::eval`].
pub(crate) fn script(list: &str, fields: &BTreeMap<String, Field>) -> String {
    let spec: Map<String, Value> = fields
        .iter()
        .map(|(name, f)| {
            (
                name.clone(),
                serde_json::json!({
                    "selector": f.selector,
                    "attr": f.attr,
                    "html": f.read == Read::Html,
                }),
            )
        })
        .collect();
    format!(
        "(() => {{ const spec = {}; \
         return QA({}).map(el => {{ const out = {{}}; \
         for (const [k, f] of Object.entries(spec)) {{ \
           const t = f.selector ? Q(f.selector, el) : el; \
           out[k] = !t ? null : f.attr ? t.getAttribute(f.attr) : f.html ? t.innerHTML : t.textContent; \
         }} return out; }}); }})()",
        Value::Object(spec),
        Value::String(list.to_owned())
    )
}

/// Post-processes raw rows: collapse whitespace and trim, keep a regex's match (or first
/// group), parse numbers; a missing required field fails the step.
pub fn clean_rows(
    step: usize,
    raw: Value,
    fields: &BTreeMap<String, Field>,
) -> Result<Vec<Value>, BrowserError> {
    let rows = match raw {
        Value::Array(rows) => rows,
        _ => Vec::new(),
    };
    let compile = |p: Option<&str>| p.and_then(|p| ferry_core::recipe::compile_regex(p).ok());
    let patterns: BTreeMap<&String, (Option<regex::Regex>, Option<regex::Regex>)> = fields
        .iter()
        .map(|(name, f)| {
            (
                name,
                (
                    compile(f.regex.as_deref()),
                    compile(f.replace.as_ref().map(|(p, _)| p.as_str())),
                ),
            )
        })
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let mut clean = Map::new();
        for (name, field) in fields {
            let mut value = row.get(name).and_then(Value::as_str).map(str::to_owned);
            if field.trim {
                value = value.map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            let (keep, replace) = match patterns.get(name) {
                Some((keep, replace)) => (keep.as_ref(), replace.as_ref()),
                None => (None, None),
            };
            if let (Some(v), Some(re)) = (&value, keep) {
                value = re.captures(v).map(|c| {
                    c.get(1)
                        .or_else(|| c.get(0))
                        .map_or(String::new(), |m| m.as_str().to_owned())
                });
            }
            if let (Some(v), Some(re), Some((_, with))) = (&value, replace, &field.replace) {
                value = Some(re.replace_all(v, with.as_str()).into_owned());
            }
            let value = match value {
                Some(v) if !field.number.is_off() => number(&v, field.number),
                Some(v) => match &field.date {
                    Some(format) => date(&v, format),
                    None => Value::String(v),
                },
                None => Value::Null,
            };
            if value.is_null() && field.required {
                return Err(BrowserError::ExtractMissing {
                    step,
                    row: i,
                    field: name.clone(),
                });
            }
            clean.insert(name.clone(), value);
        }
        out.push(Value::Object(clean));
    }
    Ok(out)
}

/// `2026.11.22` with `%Y.%m.%d` → `"2026-11-22"`; a format with a time gives
/// `2026-11-22T09:30:00`; text that does not parse → null.
fn date(text: &str, format: &str) -> Value {
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
        return Value::String(t.format("%Y-%m-%dT%H:%M:%S").to_string());
    }
    chrono::NaiveDate::parse_from_str(text, format).map_or(Value::Null, |d| {
        Value::String(d.format("%Y-%m-%d").to_string())
    })
}

/// `1,250.50 KRW` → 1250.5, `₩5,000` → 5000 (an integer: a whole number stays whole
/// unless the field asks for a float); text without a number → null.
fn number(text: &str, kind: Number) -> Value {
    let digits: String = text
        .chars()
        .skip_while(|c| !(c.is_ascii_digit() || *c == '-'))
        .take_while(|c| c.is_ascii_digit() || matches!(c, ',' | '.' | '-'))
        .filter(|c| *c != ',')
        .collect();
    let Ok(float) = digits.parse::<f64>() else {
        return Value::Null;
    };
    let whole = float.fract() == 0.0 && float.abs() < 9.0e15;
    let integer = || Value::Number((float as i64).into());
    let float = || serde_json::Number::from_f64(float).map_or(Value::Null, Value::Number);
    match kind {
        Number::As(NumberType::Float) => float(),
        Number::As(NumberType::Integer) if whole => integer(),
        Number::As(NumberType::Integer) => Value::Null,
        Number::Auto(_) if whole => integer(),
        Number::Auto(_) => float(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(f: impl FnOnce(&mut Field)) -> Field {
        let mut field: Field = serde_json::from_value(json!({})).expect("field");
        f(&mut field);
        field
    }

    #[test]
    fn rows_are_cleaned() {
        let fields: BTreeMap<String, Field> = [
            ("title".to_owned(), field(|_| {})),
            (
                "stars".to_owned(),
                field(|f| {
                    f.regex = Some(r"(\d+) stars".into());
                    f.number = Number::Auto(true);
                }),
            ),
            ("price".to_owned(), field(|f| f.number = Number::Auto(true))),
            (
                "won".to_owned(),
                field(|f| f.number = Number::As(NumberType::Integer)),
            ),
            (
                "ratio".to_owned(),
                field(|f| f.number = Number::As(NumberType::Float)),
            ),
        ]
        .into();
        let raw = json!([{"title": "  Great \n ferry ", "stars": "5 stars", "price": "1,250.50 KRW",
                          "won": "\u{20a9}5,000", "ratio": "3"},
                         {"title": "x", "stars": "none", "price": "5,000", "won": "2.5", "ratio": "x"}]);
        let rows = clean_rows(0, raw, &fields).expect("rows");
        assert_eq!(
            rows,
            [
                json!({"title": "Great ferry", "stars": 5, "price": 1250.5, "won": 5000, "ratio": 3.0}),
                json!({"title": "x", "stars": null, "price": 5000, "won": null, "ratio": null})
            ]
        );
    }

    #[test]
    fn replace_and_date_post_process() {
        let fields: BTreeMap<String, Field> = [
            (
                "when".to_owned(),
                field(|f| {
                    f.regex = Some(r"on (\S+)".into());
                    f.date = Some("%Y.%m.%d".into());
                }),
            ),
            (
                "at".to_owned(),
                field(|f| f.date = Some("%d/%m/%Y %H:%M".into())),
            ),
            (
                "who".to_owned(),
                field(|f| f.replace = Some((r"^by\s+(\w+).*$".into(), "$1".into()))),
            ),
        ]
        .into();
        let raw = json!([{"when": "posted on 2026.11.02", "at": "22/11/2026 09:30", "who": "by mina (verified)"},
                         {"when": "posted on someday", "at": "x", "who": "anonymous"}]);
        let rows = clean_rows(0, raw, &fields).expect("rows");
        assert_eq!(
            rows,
            [
                json!({"when": "2026-11-02", "at": "2026-11-22T09:30:00", "who": "mina"}),
                json!({"when": null, "at": null, "who": "anonymous"})
            ]
        );
    }

    #[test]
    fn a_missing_required_field_fails() {
        let fields: BTreeMap<String, Field> =
            [("price".to_owned(), field(|f| f.required = true))].into();
        let err =
            clean_rows(3, json!([{"price": "1"}, {"price": null}]), &fields).expect_err("missing");
        assert_eq!(err.code(), "EXTRACT_MISSING");
        assert!(err.to_string().contains("row 1"), "{err}");
    }
}

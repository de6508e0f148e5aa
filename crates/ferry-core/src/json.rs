//! Limits on JSON shared by the server and the worker. JSON decoders stop at some depth
//! (serde_json at 128 levels); a job nested just below it would be accepted, then fail to
//! decode inside a claim's answer. The server refuses any body deeper than [`MAX_DEPTH`],
//! which leaves room for the envelopes that carry a payload back to a worker.

/// The deepest objects and arrays may nest in any body the server takes.
pub const MAX_DEPTH: usize = 64;

/// Where `text` nests objects and arrays deeper than `max`: `Some` with the top-level key
/// it happens under (empty when the top level is not an object), `None` when it does not.
/// A scan of the bytes (strings skipped), without recursion; it does not check that
/// `text` is valid JSON.
pub fn too_deep(text: &[u8], max: usize) -> Option<String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0;
    let mut last_top_string = None;
    let mut top_key: Option<(usize, usize)> = None;
    for (i, &b) in text.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if depth == 1 {
                    last_top_string = Some((string_start, i));
                }
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                string_start = i + 1;
            }
            b':' if depth == 1 => top_key = last_top_string,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Some(top_key.map_or_else(String::new, |(start, end)| {
                        String::from_utf8_lossy(&text[start..end]).into_owned()
                    }));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("{}1{}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn depth_is_counted_outside_strings_and_named_by_top_level_key() {
        let ok = format!(r#"{{"kind": "a", "payload": {}}}"#, nested(63));
        assert_eq!(too_deep(ok.as_bytes(), MAX_DEPTH), None);
        let deep = format!(r#"{{"kind": "a", "payload": {}}}"#, nested(64));
        assert_eq!(
            too_deep(deep.as_bytes(), MAX_DEPTH).as_deref(),
            Some("payload")
        );
        // Brackets and quotes inside strings do not count.
        let text = format!(r#"{{"k\"[": "[[[[{}", "p": [1]}}"#, "{".repeat(100));
        assert_eq!(too_deep(text.as_bytes(), MAX_DEPTH), None);
        assert_eq!(
            too_deep(nested(65).as_bytes(), MAX_DEPTH).as_deref(),
            Some("")
        );
    }
}

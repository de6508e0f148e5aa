//! A job's trace: the W3C `traceparent` (https://www.w3.org/TR/trace-context/) a job was
//! submitted under, kept with the job and handed to the worker that claims it, so the
//! spans of its attempts continue the trace of the request that submitted it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A valid W3C `traceparent`, normalised to version `00`:
/// `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct TraceParent(String);

impl TraceParent {
    /// Parses a `traceparent` header value. `None` for anything the W3C rules say to
    /// ignore (then a new trace starts): a wrong shape, upper-case hex, version `ff`, an
    /// all-zero trace or span id, or a version `00` value with more after it. A later
    /// version is read by its first four fields, as the specification asks.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.splitn(5, '-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let span_id = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        let ok = hex(version, 2)
            && version != "ff"
            && hex(trace_id, 32)
            && !zero(trace_id)
            && hex(span_id, 16)
            && !zero(span_id)
            && hex(flags, 2)
            && (version != "00" || rest.is_none());
        ok.then(|| Self(format!("00-{trace_id}-{span_id}-{flags}")))
    }

    /// From the parts of a span context (hex trace and span ids, whether it is sampled).
    pub fn from_parts(trace_id: &str, span_id: &str, sampled: bool) -> Option<Self> {
        Self::parse(&format!(
            "00-{trace_id}-{span_id}-{}",
            if sampled { "01" } else { "00" }
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trace's id: 32 lower-case hex digits.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }

    /// The id of the span this one continues (its parent): 16 lower-case hex digits.
    pub fn span_id(&self) -> &str {
        &self.0[36..52]
    }

    /// Whether the caller sampled the trace (its `sampled` flag).
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.0[53..55], 16).is_ok_and(|f| f & 1 == 1)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TraceParent {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("not a W3C traceparent: {value:?}"))
    }
}

impl From<TraceParent> for String {
    fn from(value: TraceParent) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read_by_its_parts() {
        let tp = TraceParent::parse(GOOD).expect("valid");
        assert_eq!(tp.as_str(), GOOD);
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.span_id(), "00f067aa0ba902b7");
        assert!(tp.sampled());
        let unsampled = TraceParent::parse(&GOOD.replace("-01", "-00")).expect("valid");
        assert!(!unsampled.sampled());
    }

    #[test]
    fn what_the_specification_says_to_ignore_is_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let later = format!("{}-future", GOOD.replacen("00", "01", 1));
        let tp = TraceParent::parse(&later).expect("a later version");
        assert_eq!(tp.as_str(), GOOD);
    }

    #[test]
    fn it_round_trips_through_json() {
        let tp = TraceParent::parse(GOOD).expect("valid");
        let json = serde_json::to_string(&tp).expect("serialise");
        assert_eq!(json, format!("\"{GOOD}\""));
        assert_eq!(
            serde_json::from_str::<TraceParent>(&json).expect("read back"),
            tp
        );
        assert!(serde_json::from_str::<TraceParent>("\"nope\"").is_err());
    }
}

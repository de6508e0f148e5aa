//! Job kinds (`http.request`, `document.preprocess.v1`) and the patterns workers claim
//! with (`http.*`, `*`).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};

/// Longest accepted kind or pattern, in bytes.
pub const MAX_KIND_LEN: usize = 128;

/// A validated job kind: dot-separated segments of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Kind(String);

impl Kind {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a kind or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_KIND_LEN} bytes")]
    TooLong,
    #[error(
        "{0:?} is not a valid kind: use dot-separated segments of letters, digits, '_' or '-' (e.g. http.request)"
    )]
    Invalid(String),
    #[error(
        "{0:?} is not a valid kind pattern: use an exact kind (http.request), a prefix ending in .* (http.*) or * for all"
    )]
    InvalidPattern(String),
}

fn valid_segments(s: &str) -> bool {
    s.split('.').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

impl FromStr for Kind {
    type Err = KindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(KindError::Empty);
        }
        if s.len() > MAX_KIND_LEN {
            return Err(KindError::TooLong);
        }
        if !valid_segments(s) {
            return Err(KindError::Invalid(s.to_owned()));
        }
        Ok(Kind(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a worker asks for: one kind, every kind under a prefix, or everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(with = "String")]
pub enum KindPattern {
    /// `*`
    Any,
    /// `http.request`
    Exact(Kind),
    /// `http.*`: the stored prefix is `http.` (with the dot), so `httpx.get` does not match.
    Prefix(String),
}

impl KindPattern {
    pub fn matches(&self, kind: &str) -> bool {
        match self {
            KindPattern::Any => true,
            KindPattern::Exact(k) => k.as_str() == kind,
            KindPattern::Prefix(prefix) => kind.starts_with(prefix.as_str()),
        }
    }

    /// Whether every kind `other` matches is matched by `self` too (`baemin.*` covers
    /// `baemin.sync` and `baemin.reviews.*`, not `*`).
    pub fn covers(&self, other: &KindPattern) -> bool {
        match (self, other) {
            (KindPattern::Any, _) => true,
            (_, KindPattern::Any) => false,
            (KindPattern::Exact(a), KindPattern::Exact(b)) => a == b,
            (KindPattern::Exact(_), KindPattern::Prefix(_)) => false,
            (KindPattern::Prefix(p), KindPattern::Exact(k)) => k.as_str().starts_with(p.as_str()),
            (KindPattern::Prefix(p), KindPattern::Prefix(q)) => q.starts_with(p.as_str()),
        }
    }
}

impl fmt::Display for KindPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KindPattern::Any => f.write_str("*"),
            KindPattern::Exact(k) => f.write_str(k.as_str()),
            KindPattern::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

impl FromStr for KindPattern {
    type Err = KindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            return Ok(KindPattern::Any);
        }
        if s.len() > MAX_KIND_LEN {
            return Err(KindError::TooLong);
        }
        if let Some(prefix) = s.strip_suffix(".*") {
            if prefix.is_empty() || !valid_segments(prefix) {
                return Err(KindError::InvalidPattern(s.to_owned()));
            }
            return Ok(KindPattern::Prefix(format!("{prefix}.")));
        }
        if s.contains('*') {
            return Err(KindError::InvalidPattern(s.to_owned()));
        }
        s.parse().map(KindPattern::Exact).map_err(|e| match e {
            KindError::Invalid(_) => KindError::InvalidPattern(s.to_owned()),
            other => other,
        })
    }
}

impl Serialize for KindPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KindPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_covers_what_it_matches_and_nothing_wider() {
        let p = |s: &str| s.parse::<KindPattern>().expect("pattern");
        for (outer, inner, covers) in [
            ("*", "*", true),
            ("*", "a.b", true),
            ("baemin.*", "baemin.sync", true),
            ("baemin.*", "baemin.reviews.*", true),
            ("baemin.*", "baemin.*", true),
            ("baemin.*", "baeminx.sync", false),
            ("baemin.*", "*", false),
            ("baemin.sync", "baemin.sync", true),
            ("baemin.sync", "baemin.*", false),
            ("baemin.reviews.*", "baemin.*", false),
        ] {
            assert_eq!(p(outer).covers(&p(inner)), covers, "{outer} covers {inner}");
        }
    }

    #[test]
    fn kinds() {
        for ok in ["http.request", "document.preprocess.v1", "a", "x_y-z.1"] {
            assert!(ok.parse::<Kind>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a b",
            "http.*",
            "é",
            &"a".repeat(129),
        ] {
            assert!(bad.parse::<Kind>().is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns() {
        let check = |pattern: &str, kind: &str, expected: bool| {
            let p: KindPattern = pattern.parse().unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(p.matches(kind), expected, "{pattern} vs {kind}");
            assert_eq!(p.to_string(), pattern);
        };
        check("*", "anything.at.all", true);
        check("http.*", "http.request", true);
        check("http.*", "http.a.b", true);
        check("http.*", "httpx.get", false);
        check("http.*", "http", false);
        check("http.request", "http.request", true);
        check("http.request", "http.requests", false);
        for bad in ["", "*.http", "http*", "ht*p.x", "http.", ".*", "a..b.*"] {
            assert!(bad.parse::<KindPattern>().is_err(), "{bad}");
        }
    }
}

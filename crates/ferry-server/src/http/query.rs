//! Typed query strings. A route that takes a query declares a struct implementing
//! [`FromQuery`]: the parameters it knows and how each one's text becomes a value. The
//! [`Query`] extractor refuses unknown parameters (a typo such as `?stauts=` must not
//! silently list everything) and answers every bad parameter at once, each by its name.

use axum::{extract::FromRequestParts, http::request::Parts};
use ferry_core::FieldError;

use super::ApiError;

/// One query parameter a route takes: its name, the type its text must have and what it
/// does. The same list refuses unknown names and describes the route in the API document.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub doc: &'static str,
}

/// What a parameter's text must be.
#[derive(Debug, Clone, Copy)]
pub enum ParamType {
    Text,
    /// A whole number from `min` to `max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A number from `min` to `max`.
    Number {
        min: f64,
        max: f64,
    },
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A UUID (a job's id, say).
    Uuid,
}

impl Param {
    pub const fn new(name: &'static str, ty: ParamType, doc: &'static str) -> Self {
        Self { name, ty, doc }
    }

    /// Text: a free-form parameter.
    pub const fn text(name: &'static str, doc: &'static str) -> Self {
        Self::new(name, ParamType::Text, doc)
    }
}

/// The page size parameter, 1 to `max`.
pub const fn limit_param(max: u32) -> Param {
    Param::new(
        "limit",
        ParamType::Int {
            min: 1,
            max: max as i64,
        },
        "How many to answer at most.",
    )
}

/// A route's query parameters.
pub trait FromQuery: Default {
    /// The parameters this route takes (what the error for an unknown one lists).
    const PARAMS: &'static [Param];

    /// Takes one `key=value` pair (`key` is one of [`Self::PARAMS`]; a key may repeat).
    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError>;

    /// Checks that span pairs, once all are taken.
    fn finish(&mut self) -> Vec<FieldError> {
        Vec::new()
    }
}

/// The query string as `T`; a bad one is a `422` naming each bad parameter.
#[derive(Debug, Clone, Default)]
pub struct Query<T>(pub T);

impl<T: FromQuery + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        let mut query = T::default();
        let mut errors = Vec::new();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            if !T::PARAMS.iter().any(|p| p.name == key) {
                let known: Vec<&str> = T::PARAMS.iter().map(|p| p.name).collect();
                errors.push(FieldError::new(
                    key.into_owned(),
                    format!("unknown query parameter; known: {}", known.join(", ")),
                ));
            } else if let Err(e) = query.set(&key, &value) {
                errors.push(e);
            }
        }
        errors.extend(query.finish());
        if errors.is_empty() {
            Ok(Query(query))
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// `value` as a `T`, or an error saying what `field` should be.
pub fn number<T: std::str::FromStr>(field: &str, value: &str, what: &str) -> Result<T, FieldError> {
    value
        .parse()
        .map_err(|_| FieldError::new(field, format!("{value:?} is not {what}")))
}

/// A page size from 1 to `max`.
pub fn page_size(field: &str, value: &str, max: u32) -> Result<u32, FieldError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            FieldError::new(
                field,
                format!("{value:?} is not a whole number from 1 to {max}"),
            )
        })
}

/// `after` and `limit`: where a page starts (an item's or event's seq) and its size.
#[derive(Debug, Clone, Copy)]
pub struct Page<const DEFAULT: u32, const MAX: u32> {
    pub after: i64,
    pub limit: u32,
}

impl<const DEFAULT: u32, const MAX: u32> Default for Page<DEFAULT, MAX> {
    fn default() -> Self {
        Self {
            after: 0,
            limit: DEFAULT,
        }
    }
}

impl<const DEFAULT: u32, const MAX: u32> FromQuery for Page<DEFAULT, MAX> {
    const PARAMS: &'static [Param] = &[
        Param::new(
            "after",
            ParamType::Int {
                min: 0,
                max: i64::MAX,
            },
            "Answer what comes after this seq (0: from the start).",
        ),
        limit_param(MAX),
    ];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        match key {
            "after" => self.after = number(key, value, "an item seq")?,
            _ => self.limit = page_size(key, value, MAX)?,
        }
        Ok(())
    }
}

/// `limit` alone: how many of the newest to answer.
#[derive(Debug, Clone, Copy)]
pub struct Limit<const DEFAULT: u32, const MAX: u32>(pub u32);

impl<const DEFAULT: u32, const MAX: u32> Default for Limit<DEFAULT, MAX> {
    fn default() -> Self {
        Self(DEFAULT)
    }
}

impl<const DEFAULT: u32, const MAX: u32> FromQuery for Limit<DEFAULT, MAX> {
    const PARAMS: &'static [Param] = &[limit_param(MAX)];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        self.0 = page_size(key, value, MAX)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse<T: FromQuery + Send>(query: &str) -> Result<T, ApiError> {
        let (mut parts, _) = axum::http::Request::builder()
            .uri(format!("/v1/x?{query}"))
            .body(())
            .expect("a request")
            .into_parts();
        Query::<T>::from_request_parts(&mut parts, &())
            .await
            .map(|Query(t)| t)
    }

    #[tokio::test]
    async fn every_bad_parameter_is_named_at_once() {
        let refused = parse::<Page<100, 1000>>("limit=0&after=x&stauts=1")
            .await
            .expect_err("refused");
        let fields: Vec<&str> = refused.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["limit", "after", "stauts"]);
        assert!(refused.fields[2].message.contains("known: after, limit"));

        let page = parse::<Page<100, 1000>>("after=7").await.expect("parsed");
        assert_eq!((page.after, page.limit), (7, 100));
        let Limit(n) = parse::<Limit<100, 1000>>("limit=1000")
            .await
            .expect("parsed");
        assert_eq!(n, 1000);
    }
}

//! Ids: UUIDv7, so ids sort by creation time and make a natural list cursor; one type
//! per resource (jobs, batches, webhooks, deliveries, schedules).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Declares an id type: a UUIDv7 rendered in its hyphenated lowercase form, so ids sort
/// by creation time. Each resource has its own type, so a batch's id cannot be passed
/// where a job's is expected.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The smallest id made at `at` or later: every id made before `at` (to the
            /// millisecond) sorts below it, so it bounds a list by time (`before`).
            pub fn first_at(at: chrono::DateTime<chrono::Utc>) -> Self {
                let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
                let mut bytes = [0u8; 16];
                bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
                bytes[6] = 0x70; // version 7
                bytes[8] = 0x80; // the RFC 4122 variant
                Self(Uuid::from_bytes(bytes))
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| ParseIdError { what: $what })
            }
        }
    };
}

uuid_id!(
    /// A job's id.
    JobId,
    "job"
);
uuid_id!(
    /// A batch's id.
    BatchId,
    "batch"
);
uuid_id!(
    /// A webhook's id.
    WebhookId,
    "webhook"
);
uuid_id!(
    /// One delivery of an event to a webhook (sent as `Ferry-Id`).
    DeliveryId,
    "delivery"
);
uuid_id!(
    /// A cron schedule's id.
    ScheduleId,
    "schedule"
);

/// The text was not an id of the kind expected.
#[derive(Debug, thiserror::Error)]
#[error("not a {what} id (expected a UUID such as 0190a6d2-7a8e-7c3b-9a1e-2f4b5c6d7e8f)")]
pub struct ParseIdError {
    pub what: &'static str,
}

/// The text was not a job id.
pub type ParseJobIdError = ParseIdError;

/// A fresh random secret (lease tokens, generated API tokens): 256 bits from the
/// operating system's CSPRNG, hex encoded.
pub fn random_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation() {
        let a = JobId::new();
        let b = JobId::new();
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn ids_of_other_resources_name_what_they_are() {
        let e = "nope".parse::<BatchId>().err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("not a batch id")));
        let w = WebhookId::new();
        assert_eq!(w.to_string().parse::<WebhookId>().ok(), Some(w));
        assert_eq!(
            format!("{:?}", ScheduleId::from_uuid(Uuid::nil())),
            "ScheduleId(00000000-0000-0000-0000-000000000000)"
        );
        assert!(format!("{:?}", DeliveryId::new()).starts_with("DeliveryId("));
    }

    #[test]
    fn an_id_made_at_a_time_bounds_the_ids_made_before_it() {
        let before = JobId::new();
        let bound = JobId::first_at(chrono::Utc::now() + chrono::Duration::milliseconds(1));
        assert!(before < bound, "{before} < {bound}");
        assert!(before.to_string() < bound.to_string());
        std::thread::sleep(std::time::Duration::from_millis(3));
        let after = JobId::new();
        assert!(bound < after && bound.to_string() < after.to_string());
        assert_eq!(bound.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn parse_roundtrip_and_reject() {
        let a = JobId::new();
        assert_eq!(a.to_string().parse::<JobId>().ok(), Some(a));
        assert!("nope".parse::<JobId>().is_err());
    }
}

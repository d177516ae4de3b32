//! `Timestamp`, the one type of a time in whole seconds, and the clock.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::ids::MalformedId;

/// A time in whole unix seconds (an event's `created_at`, a `since`, a `created[…]` bound), written
/// as RFC 3339 UTC (`2024-01-15T10:30:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Now, in whole seconds.
    pub fn now() -> Self {
        Timestamp(unix_now())
    }

    pub fn unix_seconds(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = Utc.timestamp_opt(self.0 as i64, 0).single().unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        f.write_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

impl FromStr for Timestamp {
    type Err = MalformedId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = DateTime::parse_from_rfc3339(s).map_err(|_| MalformedId::new("timestamp", s))?;
        u64::try_from(t.timestamp()).map(Timestamp).map_err(|_| MalformedId::new("timestamp", s))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    unix_now_ms() / 1000
}

/// Unix milliseconds now.
pub fn unix_now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_formats_and_parses_rfc3339() {
        let t: Timestamp = "2024-01-15T10:30:00Z".parse().unwrap();
        assert_eq!(t.unix_seconds(), 1_705_314_600);
        assert_eq!(t.to_string(), "2024-01-15T10:30:00Z");
        assert!("yesterday".parse::<Timestamp>().is_err());
    }
}

//! Typed identifiers: event, endpoint, attempt and key ids (prefix + ULID, one macro), account ids,
//! test/live mode and the principal (an account in one mode). A time is `model::time`'s; an API
//! key's, `model::api_key`'s (both also named here, where most code looks for them).

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::{Generator, Ulid};

pub use crate::model::api_key::ApiKey;
pub use crate::model::time::{Timestamp, unix_now, unix_now_ms};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind}: `{value}`")]
pub struct MalformedId {
    pub kind: &'static str,
    pub value: String,
}

impl MalformedId {
    pub(crate) fn new(kind: &'static str, value: &str) -> Self {
        MalformedId { kind, value: value.chars().take(80).collect() }
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// A new ULID for now; those made by one process are strictly increasing, even within a millisecond.
fn next_ulid() -> Ulid {
    loop {
        let mut guard = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
        let generator = guard.get_or_insert_with(Generator::new);
        match generator.generate() {
            Ok(ulid) => return ulid,
            // 2^80 ids in one millisecond: wait for the next one rather than break the order.
            Err(_) => {
                drop(guard);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// An id made of a prefix and a ULID in its canonical (upper-case Crockford) form. Such ids sort
/// by creation time, both as values and as strings, so DynamoDB's sort key order is time order.
macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id for now, greater than every id this process made before.
            pub fn generate() -> Self {
                $name(next_ulid())
            }

            pub const fn from_ulid(ulid: Ulid) -> Self {
                $name(ulid)
            }

            pub const fn ulid(self) -> Ulid {
                self.0
            }

            /// When the id was made, in unix milliseconds.
            pub fn created_ms(self) -> u64 {
                self.0.timestamp_ms()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", Self::PREFIX, self.0)
            }
        }

        impl FromStr for $name {
            type Err = MalformedId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let err = || MalformedId::new($kind, s);
                let body = s.strip_prefix(Self::PREFIX).ok_or_else(err)?;
                if body.len() != ulid::ULID_LEN {
                    return Err(err());
                }
                let ulid = Ulid::from_string(body).map_err(|_| err())?;
                // One id, one spelling: lower case or ambiguous letters (I, L, O) are not the id.
                if ulid.to_string() != body {
                    return Err(err());
                }
                Ok($name(ulid))
            }
        }

        string_serde!($name);
    };
}

ulid_id!(
    /// `evt_` + ULID: an event.
    EventId, "evt_", "event id"
);

ulid_id!(
    /// `we_` + ULID: a webhook endpoint (time-ordered like event ids).
    EndpointId, "we_", "webhook endpoint id"
);

ulid_id!(
    /// `key_` + ULID: an API key, as `/v1/api_keys` names it (the key itself is only ever stored
    /// as its hash).
    ApiKeyId, "key_", "API key id"
);

ulid_id!(
    /// `whatt_` + ULID: one delivery attempt (time-ordered: the cursor of an event's attempts).
    AttemptId, "whatt_", "delivery attempt id"
);

impl EventId {
    /// The smallest id that can be made at `ms` (unix milliseconds).
    pub fn first_at_ms(ms: u64) -> Self {
        EventId(Ulid::from_parts(ms, 0))
    }

    /// The smallest id made at or after `secs` (unix seconds); `None` past the last time an id holds.
    pub fn first_at_secs(secs: u64) -> Option<Self> {
        let ms = secs.checked_mul(1000).filter(|ms| *ms < 1 << 48)?;
        Some(Self::first_at_ms(ms))
    }

    /// The largest id that can be made at `ms` (unix milliseconds).
    pub fn last_at_ms(ms: u64) -> Self {
        EventId(Ulid::from_parts(ms, u128::MAX))
    }

    /// The id just before this one in sort order, if any.
    pub fn pred(self) -> Option<Self> {
        self.0.0.checked_sub(1).map(|v| EventId(Ulid(v)))
    }

    /// The id just after this one in sort order, if any.
    pub fn succ(self) -> Option<Self> {
        self.0.0.checked_add(1).map(|v| EventId(Ulid(v)))
    }

    /// When the id was made, to the millisecond.
    pub fn time(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0.timestamp_ms() as i64).single().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// `created_at` of the event: the id's time, to the second.
    pub fn created_at(self) -> Timestamp {
        Timestamp(self.0.timestamp_ms() / 1000)
    }
}

/// Test or live: the two environments of an account, which never see each other's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = MalformedId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(Mode::Test),
            "live" => Ok(Mode::Live),
            _ => Err(MalformedId::new("mode", s)),
        }
    }
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub(crate) fn random_alnum(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char).collect()
}

pub(crate) fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `acct_` followed by 1–64 ASCII letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub const PREFIX: &'static str = "acct_";

    pub fn generate() -> Self {
        AccountId(format!("{}{}", Self::PREFIX, random_alnum(16)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AccountId {
    type Err = MalformedId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix(Self::PREFIX) {
            Some(rest) if is_token(rest, 64) => Ok(AccountId(s.to_owned())),
            _ => Err(MalformedId::new("account id", s)),
        }
    }
}

string_serde!(AccountId);

/// Who is asking: an account in one mode. The partition of every table is `{account}#{mode}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub account: AccountId,
    pub mode: Mode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_and_reject_other_spellings() {
        let id = EventId::generate();
        let s = id.to_string();
        assert!(s.starts_with("evt_") && s.len() == 30);
        assert_eq!(s.parse::<EventId>().unwrap(), id);
        for bad in [
            "",
            "evt_",
            "evt_abc123def456",
            &format!("evt_{}", s[4..].to_lowercase()),
            &s[4..],
            &format!("{s}0"),
            "evt_8ZZZZZZZZZZZZZZZZZZZZZZZZZ", // over 128 bits
        ] {
            if bad == s {
                continue;
            }
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_made_in_the_same_millisecond_stay_ordered() {
        let ids: Vec<EventId> = (0..10_000).map(|_| EventId::generate()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].to_string() < pair[1].to_string(), "string order is id order");
        }
        // 10 000 ids take well under 10 000 ms, so many share a millisecond.
        let distinct_ms: std::collections::HashSet<u64> = ids.iter().map(|i| i.ulid().timestamp_ms()).collect();
        assert!(distinct_ms.len() < ids.len());
    }

    #[test]
    fn id_order_follows_creation_time() {
        let a = EventId::first_at_ms(1_700_000_000_000);
        let b = EventId::last_at_ms(1_700_000_000_000);
        let c = EventId::first_at_ms(1_700_000_000_001);
        assert!(a < b && b < c);
        assert_eq!(b.succ(), Some(c));
        assert_eq!(c.pred(), Some(b));
        assert_eq!(EventId::from_ulid(Ulid(0)).pred(), None);
        assert_eq!(a.created_at().to_string(), "2023-11-14T22:13:20Z");
        let now = EventId::generate();
        assert!(now.created_at().unix_seconds().abs_diff(unix_now()) <= 1);
    }

    #[test]
    fn account_ids_and_modes() {
        let a = AccountId::generate();
        assert_eq!(a.as_str().parse::<AccountId>().unwrap(), a);
        assert!("acct_".parse::<AccountId>().is_err());
        assert!("acct_a#b".parse::<AccountId>().is_err(), "no partition separator inside ids");
        assert!("user_abc".parse::<AccountId>().is_err());
        assert_eq!("live".parse::<Mode>().unwrap(), Mode::Live);
        assert!("prod".parse::<Mode>().is_err());
        let p = Principal { account: "acct_x1".parse().unwrap(), mode: Mode::Test };
        assert_eq!(p.partition(), "acct_x1#test");
    }
}

//! The 27 event types of the API reference, their families, and the selectors that name one type or a
//! whole family (`payment.*`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name that is not one of the 27 event types (or, for selectors, not a type or family wildcard).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

macro_rules! families {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The first segment of an event type: `payment` in `payment.succeeded`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Family { $($variant),* }

        impl Family {
            pub const ALL: &'static [Family] = &[$(Family::$variant),*];

            pub const fn as_str(self) -> &'static str {
                match self { $(Family::$variant => $name),* }
            }
        }
    };
}

families! {
    Payment => "payment",
    Subscription => "subscription",
    Payout => "payout",
    Refund => "refund",
    Checkout => "checkout",
    Customer => "customer",
}

macro_rules! event_types {
    ($($variant:ident => $name:literal in $family:ident, $description:literal),* $(,)?) => {
        /// One of the event types of the API reference. Serialises as its dotted name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub const fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            pub const fn family(self) -> Family {
                match self { $(EventType::$variant => Family::$family),* }
            }

            /// What the event means, as the API reference's table of event types says it.
            pub const fn description(self) -> &'static str {
                match self { $(EventType::$variant => $description),* }
            }
        }
    };
}

event_types! {
    PaymentCreated => "payment.created" in Payment, "Payment was created",
    PaymentPending => "payment.pending" in Payment, "Payment is pending authorization",
    PaymentProcessing => "payment.processing" in Payment, "Payment is being processed",
    PaymentSucceeded => "payment.succeeded" in Payment, "Payment completed successfully",
    PaymentFailed => "payment.failed" in Payment, "Payment failed",
    PaymentCanceled => "payment.canceled" in Payment, "Payment was canceled",
    SubscriptionCreated => "subscription.created" in Subscription, "Subscription was created",
    SubscriptionUpdated => "subscription.updated" in Subscription, "Subscription was updated",
    SubscriptionCanceled => "subscription.canceled" in Subscription, "Subscription was canceled",
    SubscriptionPaused => "subscription.paused" in Subscription, "Subscription was paused",
    SubscriptionResumed => "subscription.resumed" in Subscription, "Subscription was resumed",
    SubscriptionTrialWillEnd => "subscription.trial_will_end" in Subscription, "Trial ending in 3 days",
    SubscriptionPaymentSucceeded => "subscription.payment_succeeded" in Subscription, "Recurring payment succeeded",
    SubscriptionPaymentFailed => "subscription.payment_failed" in Subscription, "Recurring payment failed",
    PayoutCreated => "payout.created" in Payout, "Payout was created",
    PayoutProcessing => "payout.processing" in Payout, "Payout is being processed",
    PayoutCompleted => "payout.completed" in Payout, "Payout was successful",
    PayoutFailed => "payout.failed" in Payout, "Payout failed",
    PayoutCanceled => "payout.canceled" in Payout, "Payout was canceled",
    RefundCreated => "refund.created" in Refund, "Refund was created",
    RefundSucceeded => "refund.succeeded" in Refund, "Refund was successful",
    RefundFailed => "refund.failed" in Refund, "Refund failed",
    CheckoutSessionCompleted => "checkout.session.completed" in Checkout, "Checkout session completed",
    CheckoutSessionExpired => "checkout.session.expired" in Checkout, "Checkout session expired",
    CustomerCreated => "customer.created" in Customer, "Customer was created",
    CustomerUpdated => "customer.updated" in Customer, "Customer was updated",
    CustomerDeleted => "customer.deleted" in Customer, "Customer was deleted",
}

impl FromStr for Family {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL.iter().copied().find(|f| f.as_str() == s).ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == s).ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One event type, or a whole family written `family.*` (`payment.*`, `checkout.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TypeSelector {
    Exact(EventType),
    Family(Family),
}

impl TypeSelector {
    pub fn matches(self, t: EventType) -> bool {
        match self {
            TypeSelector::Exact(e) => e == t,
            TypeSelector::Family(f) => t.family() == f,
        }
    }
}

impl FromStr for TypeSelector {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_suffix(".*") {
            Some(family) => family.parse().map(TypeSelector::Family).map_err(|_| UnknownEventType(s.to_owned())),
            None => s.parse().map(TypeSelector::Exact),
        }
    }
}

impl fmt::Display for TypeSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeSelector::Exact(t) => write!(f, "{t}"),
            TypeSelector::Family(fam) => write!(f, "{fam}.*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_27_types_and_every_name_round_trips() {
        assert_eq!(EventType::ALL.len(), 27);
        for &t in EventType::ALL {
            let parsed: EventType = t.as_str().parse().unwrap();
            assert_eq!(parsed, t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
            assert!(t.as_str().starts_with(t.family().as_str()));
        }
    }

    #[test]
    fn descriptions_are_the_api_references() {
        // The reference sits beside the checkout (`../shared/reference`), as CI has it.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/paygate-events-api.txt");
        let reference = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for &t in EventType::ALL {
            let row = format!("{} | {} |", t.as_str(), t.description());
            assert!(reference.lines().any(|l| l == row), "{row} is not in the reference");
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        for bad in ["", "payment", "payment.refunded", "PAYMENT.SUCCEEDED", "payment.succeeded ", "*"] {
            assert!(bad.parse::<EventType>().is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<EventType>("\"charge.succeeded\"").is_err());
    }

    #[test]
    fn family_wildcards_parse_to_the_family() {
        assert_eq!("payment.*".parse(), Ok(TypeSelector::Family(Family::Payment)));
        assert_eq!("checkout.*".parse(), Ok(TypeSelector::Family(Family::Checkout)));
        assert_eq!("refund.failed".parse(), Ok(TypeSelector::Exact(EventType::RefundFailed)));
        for bad in ["charge.*", ".*", "payment.**", "payment.succeeded.*"] {
            assert!(bad.parse::<TypeSelector>().is_err(), "{bad:?}");
        }
        let fam: TypeSelector = "subscription.*".parse().unwrap();
        assert!(fam.matches(EventType::SubscriptionTrialWillEnd));
        assert!(!fam.matches(EventType::PaymentCreated));
        assert_eq!(fam.to_string(), "subscription.*");
    }
}

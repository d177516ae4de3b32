//! Realistic `data.object`s for `paygate trigger`: mobile-money payments, subscriptions, payouts,
//! refunds, checkout sessions and customers, as the API reference shows them.

use paygate::{EventType, Family};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};

fn id(prefix: &str) -> String {
    const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let tail: String = (0..14).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect();
    format!("{prefix}_{tail}")
}

fn masked_phone() -> String {
    let mut rng = rand::rng();
    let prefix = ["024", "054", "055", "020", "050", "027", "057"].choose(&mut rng).copied().unwrap_or("024");
    format!("{prefix}****{:03}", rng.random_range(0..1000))
}

fn provider() -> &'static str {
    ["mtn", "vodafone", "airteltigo"].choose(&mut rand::rng()).copied().unwrap_or("mtn")
}

/// The status word of an event type: `payment.succeeded` → `succeeded`.
fn status(t: EventType) -> &'static str {
    t.as_str().rsplit('.').next().unwrap_or("created")
}

const NAMES: [&str; 4] = ["Ama Mensah", "Kwame Boateng", "Akosua Owusu", "Kofi Asante"];

/// A plausible object for an event of type `t`.
pub fn object_for(t: EventType) -> Map<String, Value> {
    let mut rng = rand::rng();
    let amount: u64 = rng.random_range(1..=5000) * 100;
    let value = match t.family() {
        Family::Payment => json!({
            "id": id("pay"),
            "object": "payment",
            "amount": amount,
            "currency": "GHS",
            "status": match status(t) { "created" => "pending", s => s },
            "payment_method": "mobile_money",
            "provider": provider(),
            "phone": masked_phone(),
            "description": "Order payment",
            "metadata": { "order_id": format!("order_{}", rng.random_range(1000..99999)) },
        }),
        Family::Subscription => json!({
            "id": id("sub"),
            "object": "subscription",
            "customer": id("cus"),
            "status": match t {
                EventType::SubscriptionCanceled => "canceled",
                EventType::SubscriptionPaused => "paused",
                EventType::SubscriptionTrialWillEnd => "trialing",
                EventType::SubscriptionPaymentFailed => "past_due",
                _ => "active",
            },
            "plan": { "id": "plan_monthly", "amount": amount, "currency": "GHS", "interval": "month" },
            "payment_method": "mobile_money",
            "provider": provider(),
            "phone": masked_phone(),
        }),
        Family::Payout => json!({
            "id": id("po"),
            "object": "payout",
            "amount": amount,
            "currency": "GHS",
            "status": match status(t) { "created" => "pending", s => s },
            "method": "mobile_money",
            "provider": provider(),
            "destination": masked_phone(),
        }),
        Family::Refund => json!({
            "id": id("re"),
            "object": "refund",
            "payment": id("pay"),
            "amount": amount,
            "currency": "GHS",
            "status": match status(t) { "created" => "pending", s => s },
            "reason": "requested_by_customer",
        }),
        Family::Checkout => json!({
            "id": id("cs"),
            "object": "checkout.session",
            "amount_total": amount,
            "currency": "GHS",
            "status": if t == EventType::CheckoutSessionCompleted { "complete" } else { "expired" },
            "payment": if t == EventType::CheckoutSessionCompleted { Value::String(id("pay")) } else { Value::Null },
        }),
        Family::Customer => json!({
            "id": id("cus"),
            "object": "customer",
            "name": NAMES[rng.random_range(0..NAMES.len())],
            "email": "customer@example.com",
            "phone": masked_phone(),
            "deleted": t == EventType::CustomerDeleted,
        }),
    };
    match value {
        Value::Object(m) => m,
        _ => unreachable!("fixtures are objects"),
    }
}

/// `FIELD=VALUE` of `paygate trigger --set`: VALUE as JSON when it parses as JSON (5000, true,
/// {"a":1}), else as a string. FIELD is a field of `data.object`, not `id` or `object`.
pub fn parse_field(arg: &str) -> Result<(String, Value), String> {
    let (field, value) = arg.split_once('=').ok_or_else(|| format!("expected FIELD=VALUE, got `{arg}`"))?;
    let field = field.trim();
    if field.is_empty() {
        return Err(format!("no field name in `{arg}`"));
    }
    if field == "id" || field == "object" {
        return Err(format!("`{field}` is made by trigger and cannot be set"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((field.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payments_look_like_the_reference() {
        let p = object_for(EventType::PaymentSucceeded);
        assert_eq!(p["object"], "payment");
        assert_eq!(p["currency"], "GHS");
        assert_eq!(p["status"], "succeeded");
        assert_eq!(p["payment_method"], "mobile_money");
        assert!(p["phone"].as_str().unwrap().contains("****"));
        assert!(p["id"].as_str().unwrap().starts_with("pay_"));
        for &t in EventType::ALL {
            assert!(object_for(t).contains_key("id"), "{t}");
        }
    }

    #[test]
    fn set_takes_json_or_a_string_and_refuses_the_fixed_fields() {
        assert_eq!(parse_field("amount=5000").unwrap(), ("amount".to_owned(), json!(5000)));
        assert_eq!(parse_field("description=<script>x</script>").unwrap().1, json!("<script>x</script>"));
        assert_eq!(parse_field("note=a=b").unwrap().1, json!("a=b"));
        for bad in ["nofield", "=x", "id=pay_1", "object=refund"] {
            assert!(parse_field(bad).is_err(), "{bad}");
        }
    }
}

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

/// Sets `fields` (from `--set`) on `object`, a fixture of [`object_for`]: each must be a field the
/// object has, with a value of its kind. Numbers there are amounts, whole and not negative; a
/// number or `true` given for a text field is taken as its text.
pub fn apply_fields(object: &mut Map<String, Value>, fields: &[(String, Value)]) -> Result<(), String> {
    let kind = object.get("object").and_then(Value::as_str).unwrap_or("data").to_owned();
    for (field, value) in fields {
        let Some(current) = object.get(field) else {
            let known: Vec<&str> = object.keys().map(String::as_str).filter(|k| !matches!(*k, "id" | "object")).collect();
            return Err(format!("--set {field}: a {kind} has no field `{field}`; it has {}", known.join(", ")));
        };
        let value = match (current, value) {
            (Value::Number(_), Value::Number(n)) if n.as_u64().is_some() => value.clone(),
            (Value::Number(_), v) => return Err(format!("--set {field}: `{field}` is an amount in minor units, a whole number 0 or more (got {v})")),
            (Value::String(_) | Value::Null, Value::String(_) | Value::Null) => value.clone(),
            (Value::String(_) | Value::Null, Value::Number(_) | Value::Bool(_)) => Value::String(value.to_string()),
            (Value::Bool(_), Value::Bool(_)) => value.clone(),
            (Value::Object(_), Value::Object(_)) => value.clone(),
            (current, v) => {
                let want = match current {
                    Value::Bool(_) => "true or false",
                    Value::Object(_) => "a JSON object, such as {\"order_id\":\"42\"}",
                    _ => "text",
                };
                return Err(format!("--set {field}: `{field}` takes {want} (got {v})"));
            }
        };
        object.insert(field.clone(), value);
    }
    Ok(())
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

    #[test]
    fn set_refuses_unknown_fields_and_values_of_the_wrong_kind_or_sign() {
        let mut p = object_for(EventType::PaymentSucceeded);
        let set = |arg: &str| vec![parse_field(arg).unwrap()];
        apply_fields(&mut p, &set("amount=5000")).unwrap();
        apply_fields(&mut p, &set("description=42")).unwrap();
        apply_fields(&mut p, &set(r#"metadata={"order_id":"o_1"}"#)).unwrap();
        assert_eq!((p["amount"].clone(), p["description"].clone(), p["metadata"]["order_id"].clone()), (json!(5000), json!("42"), json!("o_1")));
        for (bad, says) in [
            ("nosuchfield=1", "a payment has no field `nosuchfield`; it has amount, currency"),
            ("amount=-5", "`amount` is an amount in minor units, a whole number 0 or more (got -5)"),
            ("amount=12.5", "(got 12.5)"),
            ("amount=lots", "(got \"lots\")"),
            ("metadata=7", "`metadata` takes a JSON object"),
            (r#"description={"a":1}"#, "`description` takes text"),
        ] {
            let e = apply_fields(&mut p, &set(bad)).unwrap_err();
            assert!(e.starts_with(&format!("--set {}", bad.split('=').next().unwrap())) && e.contains(says), "{bad}: {e}");
        }
        let mut c = object_for(EventType::CustomerDeleted);
        assert!(apply_fields(&mut c, &set("deleted=yes")).unwrap_err().contains("true or false"));
    }
}

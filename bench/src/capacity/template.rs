//! The ceilings template.yaml sets, read from it (a `!Ref` to a parameter reads the parameter's
//! default), each with its sizing rule.

use serde_norway::Value;

use super::model::{Ceiling, GOAL_PLATFORM_DELIVERIES};

/// SQS's bound on in-flight messages of a standard queue.
pub const SQS_IN_FLIGHT_LIMIT: f64 = 120_000.0;
/// The receivers' average latency the delivery sizing assumes.
pub const RECEIVER_LATENCY_S: f64 = 0.2;

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str().and_then(|p| doc.get("Parameters")?.get(p)?.get("Default")),
        Value::Mapping(m) if m.contains_key("Ref") => m.get("Ref")?.as_str().and_then(|p| doc.get("Parameters")?.get(p)?.get("Default")),
        other => Some(other),
    }
}

fn number(doc: &Value, path: &[&str]) -> anyhow::Result<f64> {
    let mut v = doc;
    for p in path {
        v = v.get(*p).ok_or_else(|| anyhow::anyhow!("template.yaml has no {}", path.join(".")))?;
    }
    let v = resolve(doc, v).ok_or_else(|| anyhow::anyhow!("{}: an unknown parameter", path.join(".")))?;
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).ok_or_else(|| anyhow::anyhow!("{}: not a number", path.join(".")))
}

/// A parameter's default.
pub fn parameter(template: &str, name: &str) -> anyhow::Result<f64> {
    let doc: Value = serde_norway::from_str(template)?;
    number(&doc, &["Parameters", name, "Default"])
}

/// The stack's own ceilings, at the template's defaults.
pub fn ceilings(template: &str) -> anyhow::Result<Vec<Ceiling>> {
    let doc: Value = serde_norway::from_str(template)?;
    let route = ["Resources", "HttpApi", "Properties", "DefaultRouteSettings"];
    let rate = number(&doc, &[&route[..], &["ThrottlingRateLimit"]].concat())?;
    let burst = number(&doc, &[&route[..], &["ThrottlingBurstLimit"]].concat())?;
    let mapping = ["Resources", "DeliverWebhooksFunction", "Properties", "Events", "Queue", "Properties"];
    let batch = number(&doc, &[&mapping[..], &["BatchSize"]].concat())?;
    let concurrency = number(&doc, &[&mapping[..], &["ScalingConfig", "MaximumConcurrency"]].concat())?;
    let slow_mapping = ["Resources", "DeliverWebhooksFunction", "Properties", "Events", "SlowQueue", "Properties"];
    let slow_concurrency = number(&doc, &[&slow_mapping[..], &["ScalingConfig", "MaximumConcurrency"]].concat())?;
    let slow_batch = number(&doc, &[&slow_mapping[..], &["BatchSize"]].concat())?;
    let sweepers = number(&doc, &["Resources", "SweeperFunction", "Properties", "ReservedConcurrentExecutions"])?;
    Ok(vec![
        Ceiling::new(
            "API requests/s, all merchants (ApiThrottleRate, burst ApiThrottleBurst)",
            format!(
                "HTTP API stage throttle {rate:.0}/s, burst {burst:.0}; size to the merchants' peak API traffic, within the account's regional API Gateway quota"
            ),
            rate,
            "requests/s",
            rate,
        ),
        Ceiling::new(
            "concurrent webhook POSTs (DeliveryConcurrency × 10)",
            format!("the delivery mapping's MaximumConcurrency {concurrency:.0} (up to 1,000) × BatchSize {batch:.0}"),
            concurrency * batch,
            "POSTs",
            GOAL_PLATFORM_DELIVERIES * RECEIVER_LATENCY_S,
        ),
        Ceiling::new(
            format!("deliveries/s at {RECEIVER_LATENCY_S} s average receiver latency"),
            "MaximumConcurrency × BatchSize / latency; beyond 1,000 concurrent batches, the account's Lambda concurrency quota and SQS provisioned pollers",
            concurrency * batch / RECEIVER_LATENCY_S,
            "deliveries/s",
            GOAL_PLATFORM_DELIVERIES,
        ),
        Ceiling::new(
            format!("deliveries/s at {RECEIVER_LATENCY_S} s, DeliveryConcurrency at its maximum (1,000)"),
            "the same rule with the parameter raised: the goal needs the maximum, or a lower receiver latency",
            1000.0 * batch / RECEIVER_LATENCY_S,
            "deliveries/s",
            GOAL_PLATFORM_DELIVERIES,
        ),
        Ceiling::new(
            "in-flight delivery messages",
            format!("at most MaximumConcurrency × BatchSize = {:.0} (retries wait in DynamoDB); SQS allows {SQS_IN_FLIGHT_LIMIT:.0}", concurrency * batch),
            SQS_IN_FLIGHT_LIMIT / (concurrency * batch),
            "× headroom",
            1.0,
        ),
        Ceiling::new(
            "in-flight slow-lane messages",
            format!(
                "at most SlowDeliveryConcurrency {slow_concurrency:.0} × BatchSize {slow_batch:.0} = {:.0}: attempts to endpoints answering in 0.5 s or more, a slow one's each with its lease (the rest wait in DynamoDB); SQS allows {SQS_IN_FLIGHT_LIMIT:.0}",
                slow_concurrency * slow_batch
            ),
            SQS_IN_FLIGHT_LIMIT / (slow_concurrency * slow_batch),
            "× headroom",
            1.0,
        ),
        Ceiling::new(
            "schedulers (sweeper)",
            format!("ReservedConcurrentExecutions {sweepers:.0}: one sweeper, reading every ByDue shard each second, 32 at a time"),
            sweepers,
            "sweepers",
            1.0,
        ),
    ])
}

//! `make capacity`: what one merchant and the platform can do before a DynamoDB partition key (or a
//! setting of template.yaml) is at its limit, measured through the real code on DynamoDB Local
//! (which reports `ConsumedCapacity` when asked), then the platform replayed at the goals.
//!
//! - `recorder`: the SDK interceptor that asks every request for its units and records them;
//! - `workload`: one merchant with 0, 1, 2 and 16 endpoints, phase by phase;
//! - `model`: which key each unit lands on, the hottest key per event and per delivery, ceilings;
//! - `template`: the stack's own ceilings, read from template.yaml;
//! - `simulate`: the goal traffic, second by second, on the measured units.

pub mod model;
pub mod recorder;
pub mod simulate;
pub mod template;
pub mod workload;

use std::fmt::Write as _;
use std::path::Path;

use model::{Ceiling, Cost, GOAL_EVENT_SHARDS, HotKey, costs, hot_keys, key_ceilings};
use simulate::{Peak, Traffic, simulate};
use workload::{Measured, Per};

/// Endpoint counts of the workload; the ceilings come from the run with two (the goal's shape).
pub const ENDPOINT_COUNTS: [usize; 4] = [0, 1, 2, 16];
pub const EVENTS: usize = 40;

/// One phase's units per event, delivery or request.
pub type PhaseCost = (String, Per, Cost);

/// Everything `make capacity` prints and writes.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// Per run (endpoint count): per phase, its units per event, delivery or request.
    pub operations: Vec<(usize, Vec<PhaseCost>)>,
    pub hot_keys: Vec<HotKey>,
    pub ceilings: Vec<Ceiling>,
    pub traffic: Traffic,
    pub peaks: Vec<Peak>,
}

/// Builds the report from the measured runs.
pub fn report(runs: &[Measured], template_yaml: &str) -> anyhow::Result<Report> {
    // The ByDue units per delivery do not depend on the shard count; their spread does. The
    // ceilings and the simulation take the template's DueShards, with the code's default (what a
    // stack had before the parameter) for comparison.
    let due_shards = template::parameter(template_yaml, "DueShards")? as u32;
    let two = runs.iter().find(|m| m.endpoints == 2).ok_or_else(|| anyhow::anyhow!("no run with two endpoints"))?;
    let hot = hot_keys(two, due_shards);
    // A merchant at the goal has a shard plan of GOAL_EVENT_SHARDS keys; every account starts
    // without one (one key), which the rows after it show.
    let mut ceilings = key_ceilings(&hot, GOAL_EVENT_SHARDS);
    for c in key_ceilings(&hot, 1).into_iter().filter(|c| c.ceiling.starts_with("events/s of") && c.ceiling.contains("(Events")) {
        ceilings.push(Ceiling { ceiling: format!("{}, without a shard plan (every account's start)", c.ceiling), ..c });
    }
    let before = paygate::store::deliveries::DUE_SHARDS;
    for c in key_ceilings(&hot_keys(two, before), GOAL_EVENT_SHARDS).into_iter().filter(|c| c.ceiling.starts_with("deliveries/s of the platform")) {
        ceilings.push(Ceiling { ceiling: format!("{} with {before} ByDue shards (the code's default, as before DueShards)", c.ceiling), ..c });
    }
    ceilings.extend(template::ceilings(template_yaml)?);
    let traffic = Traffic { due_shards, ..Traffic::goal() };
    let peaks = simulate(&traffic, &hot, due_shards);
    let operations = runs.iter().map(|m| (m.endpoints, costs(m).into_iter().map(|(name, (per, cost))| (name.to_owned(), per, cost)).collect())).collect();
    Ok(Report { operations, hot_keys: hot, ceilings, traffic, peaks })
}

fn n(v: f64) -> String {
    if v.is_infinite() {
        "unbounded".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The report as Markdown: operations, hot keys, ceilings, and the simulation's peaks.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Units per operation (write / read), from DynamoDB Local's `ConsumedCapacity` (`INDEXES`):\n");
    let _ = writeln!(s, "| endpoints | operation | per | WCU | RCU | where (WCU) |\n|---|---|---|---|---|---|");
    for (endpoints, ops) in &r.operations {
        for (name, per, cost) in ops {
            let places: Vec<String> = cost.by_place.iter().filter(|(_, (w, _))| *w > 0.0).map(|((p, c), (w, _))| format!("{p} ({c:?}) {}", n(*w))).collect();
            let _ = writeln!(s, "| {endpoints} | {name} | {per:?} | {} | {} | {} |", n(cost.write()), n(cost.read()), places.join(", "));
        }
    }
    let _ = writeln!(s, "\nThe hottest key of each table and index, one merchant with two endpoints:\n");
    let _ = writeln!(s, "| table or index | key | WCU per event | RCU per event | WCU per delivery |\n|---|---|---|---|---|");
    for h in &r.hot_keys {
        let _ = writeln!(s, "| {} | {} | {} | {} | {} |", h.place, h.class.describe(), n(h.write_per_event), n(h.read_per_event), n(h.write_per_delivery));
    }
    let _ = writeln!(s, "\nCeilings:\n\n| ceiling | what sets it | value | goal | met |\n|---|---|---|---|---|");
    for c in &r.ceilings {
        let _ = writeln!(s, "| {} | {} | {} {} | {} | {} |", c.ceiling, c.set_by, n(c.value), c.unit, n(c.goal), if c.met { "yes" } else { "**no**" });
    }
    let t = &r.traffic;
    let _ = writeln!(
        s,
        "\nThe goal traffic replayed ({} s of {} events/s over {} merchants, the top one at {} events/s, {} endpoints per event, {:.0} % failing; {} ByDue shards, the top merchant's events over the {} keys of its shard plan):\n",
        t.seconds,
        t.events_per_second,
        t.merchants,
        t.top_merchant,
        t.endpoints_per_event,
        t.failing_endpoints * 100.0,
        t.due_shards,
        t.event_shards
    );
    let _ = writeln!(s, "| table or index | hottest key | peak WCU/s | peak RCU/s | headroom |\n|---|---|---|---|---|");
    for p in &r.peaks {
        let _ = writeln!(s, "| {} | {} | {} | {} | {}× |", p.place, p.class.describe(), n(p.peak_write_units), n(p.peak_read_units), n(p.headroom));
    }
    s
}

/// Writes `target/capacity/capacity.{json,md}` and the README's capacity block.
pub fn publish(r: &Report, dir: &Path, readme: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("capacity.json"), serde_json::to_string_pretty(r)?)?;
    let md = markdown(r);
    std::fs::write(dir.join("capacity.md"), &md)?;
    let text = std::fs::read_to_string(readme)?;
    let (begin, end) = ("<!-- capacity:begin -->", "<!-- capacity:end -->");
    if let (Some(b), Some(e)) = (text.find(begin), text.find(end)) {
        let updated = format!("{}{begin}\n{md}{}", &text[..b], &text[e..]);
        std::fs::write(readme, updated)?;
    }
    Ok(())
}

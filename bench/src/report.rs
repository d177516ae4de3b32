//! The table `make bench` prints: one row per measurement, with the baseline taken in the same run,
//! their ratio, the target and whether it is met. Also written as JSON (and the Markdown table the
//! README shows) under `target/bench/`.

use std::path::Path;

use serde::Serialize;

/// What a row must reach.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", content = "limit", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // every target is an upper bound; the names say of what
pub enum Target {
    /// value / baseline at most this.
    RatioAtMost(f64),
    /// value at most this, in the row's unit.
    AtMost(f64),
    /// value − baseline at most this, in the row's unit.
    AboveBaselineAtMost(f64),
}

#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub what: String,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
    pub baseline: Option<Baseline>,
    pub ratio: Option<f64>,
    pub target: Target,
    pub pass: bool,
    /// How it was measured, or why a miss is expected.
    pub note: String,
}

impl Row {
    pub fn new(what: impl Into<String>, value: f64, unit: &'static str, baseline: Option<(&str, f64)>, target: Target, note: impl Into<String>) -> Row {
        let baseline = baseline.map(|(what, value)| Baseline { what: what.to_owned(), value });
        let ratio = baseline.as_ref().filter(|b| b.value > 0.0).map(|b| value / b.value);
        let pass = match target {
            Target::RatioAtMost(r) => ratio.is_some_and(|x| x <= r),
            Target::AtMost(v) => value <= v,
            Target::AboveBaselineAtMost(d) => baseline.as_ref().is_some_and(|b| value - b.value <= d),
        };
        Row { what: what.into(), value, unit, baseline, ratio, target, pass, note: note.into() }
    }
}

fn amount(v: f64, unit: &str) -> String {
    let digits = if v.fract() == 0.0 || v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

fn target(row: &Row) -> String {
    match row.target {
        Target::RatioAtMost(r) => format!("≤ {r:.2}×"),
        Target::AtMost(v) => format!("≤ {}", amount(v, row.unit)),
        Target::AboveBaselineAtMost(d) => format!("≤ baseline + {}", amount(d, row.unit)),
    }
}

/// The Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| what | value | baseline (same run) | ratio | target | met |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let baseline = r.baseline.as_ref().map_or("—".to_owned(), |b| format!("{}: {}", b.what, amount(b.value, r.unit)));
        let ratio = r.ratio.map_or("—".to_owned(), |x| format!("{x:.2}×"));
        out +=
            &format!("| {} | {} | {} | {} | {} | {} |\n", r.what, amount(r.value, r.unit), baseline, ratio, target(r), if r.pass { "yes" } else { "**no**" });
    }
    out
}

/// Prints the table with its notes, and writes `results.json` and `table.md` into `dir`.
pub fn publish(rows: &[Row], dir: &Path) -> anyhow::Result<()> {
    let table = markdown(rows);
    println!("\n{table}");
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("- {}: {}", r.what, r.note);
    }
    std::fs::create_dir_all(dir)?;
    let json = serde_json::json!({
        "generated_at": paygate::ids::unix_now(),
        "machine": { "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "arch": std::env::consts::ARCH },
        "rows": rows,
    });
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&json)?)?;
    std::fs::write(dir.join("table.md"), &table)?;
    println!("\nwritten: {}/results.json and table.md", dir.display());
    Ok(())
}

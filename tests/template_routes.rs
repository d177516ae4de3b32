//! Every route of template.yaml's HTTP API is served by `paygate dev`'s gateway and lowered to a
//! native route by `make deploy-local`'s pre-deploy step (scripts/deploy_local.py), so a new route
//! cannot silently go missing on either local path.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use paygate::local::TEMPLATE;
use serde_norway::Value;

/// `METHOD /path` of every HttpApi event of every function in the template.
fn template_routes() -> BTreeSet<String> {
    let doc: Value = serde_norway::from_str(TEMPLATE).unwrap();
    let mut keys = BTreeSet::new();
    for (_, res) in doc["Resources"].as_mapping().unwrap() {
        let Some(events) = res["Properties"]["Events"].as_mapping() else { continue };
        for (_, e) in events {
            if e["Type"].as_str() == Some("HttpApi") {
                let p = &e["Properties"];
                keys.insert(format!("{} {}", p["Method"].as_str().unwrap().to_uppercase(), p["Path"].as_str().unwrap()));
            }
        }
    }
    keys
}

#[test]
fn every_template_route_is_served_locally_and_lowered_for_the_emulator() {
    let template = template_routes();
    assert!(template.len() >= 11, "{template:?}");
    let gateway: BTreeSet<String> = paygate_cli::gateway::route_keys().map(str::to_owned).collect();
    assert_eq!(gateway, template, "cli/src/gateway.rs ROUTES and template.yaml differ");

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/build-venv/bin/python");
    assert!(python.exists(), "{} is missing: `make test` (or `scripts/local.sh tools`) installs it", python.display());
    let out = Command::new(python).arg(root.join("scripts/deploy_local.py")).arg("routes").arg(root.join("template.yaml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lowered: BTreeSet<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lowered, template, "the pre-deploy step lowers exactly the template's routes");
}

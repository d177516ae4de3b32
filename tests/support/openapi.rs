//! Checks real responses against `openapi.yaml`: the response schema of the matching path,
//! method and status must accept the body.

use std::sync::LazyLock;

use serde_json::{Value, json};

static SPEC: LazyLock<Value> = LazyLock::new(|| {
    let yaml = include_str!("../../openapi.yaml");
    serde_norway::from_str(yaml).expect("openapi.yaml parses")
});

pub fn spec() -> &'static Value {
    &SPEC
}

/// Resolves a local `$ref` (`#/components/...`).
fn resolve(v: &Value) -> &Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => SPEC.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => v,
    }
}

/// The spec's path template that `path` matches (`/v1/events/evt_…` → `/v1/events/{id}`).
fn template_of(path: &str) -> String {
    let paths = SPEC["paths"].as_object().expect("paths");
    let segs: Vec<&str> = path.split('/').collect();
    paths
        .keys()
        .find(|t| {
            let ts: Vec<&str> = t.split('/').collect();
            ts.len() == segs.len() && ts.iter().zip(&segs).all(|(t, s)| t.starts_with('{') || t == s)
        })
        .cloned()
        .unwrap_or_else(|| panic!("{path} is not in openapi.yaml"))
}

/// Panics unless `openapi.yaml` documents this response and its schema accepts `body`.
pub fn check_response(method: &str, path: &str, status: u16, body: &Value) {
    let template = template_of(path);
    let op = &SPEC["paths"][&template][method];
    assert!(op.is_object(), "{method} {template} is not in openapi.yaml");
    let response =
        resolve(op["responses"].get(status.to_string()).unwrap_or_else(|| panic!("{method} {template}: status {status} is not documented; body {body}")));
    let schema = &response["content"]["application/json"]["schema"];
    // Validate against a root that carries the components, so `#/components/...` refs resolve.
    let mut root = json!({ "$schema": "https://json-schema.org/draft/2020-12/schema" });
    root["allOf"] = json!([schema]);
    root["components"] = SPEC["components"].clone();
    let validator = jsonschema::validator_for(&root).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{method} {template} {status}: body does not match openapi.yaml: {errors:?}\n{body}");
}

/// Whether the component schema `name` (`#/components/schemas/{name}`) accepts `value`.
pub fn schema_accepts(name: &str, value: &Value) -> bool {
    let mut root = json!({ "$schema": "https://json-schema.org/draft/2020-12/schema" });
    root["$ref"] = json!(format!("#/components/schemas/{name}"));
    root["components"] = SPEC["components"].clone();
    jsonschema::validator_for(&root).expect("schema compiles").is_valid(value)
}

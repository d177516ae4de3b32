//! Dependencies run one way: `model` ← `store` ← `webhook` ← `http` ← the functions and the CLI.
//! This test reads every file of `model/`, `store/` and `webhook/` and fails on a path into a layer
//! above (comments aside): a model that knew of storage or HTTP, a store that knew of webhooks or
//! HTTP, or webhook code that knew of HTTP, would bring the cycles back.

use std::path::Path;

/// What each lower layer may not name: the layers above it, and the modules that wire them.
const RULES: &[(&str, &[&str])] = &[
    ("model", &["store", "webhook", "http", "error", "auth", "ingest", "wiring", "config", "aws"]),
    ("store", &["webhook", "http", "error", "auth", "ingest", "wiring", "config"]),
    ("webhook", &["http", "error", "auth", "ingest", "wiring", "config"]),
];

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::{layer}` paths a source names outside comments.
fn named_layers(source: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for layer in forbidden {
            let path = format!("crate::{layer}");
            let mut rest = code;
            while let Some(i) = rest.find(&path) {
                let after = rest[i + path.len()..].chars().next();
                if !after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    found.push(format!("line {}: {}", n + 1, line.trim()));
                }
                rest = &rest[i + path.len()..];
            }
        }
    }
    found
}

#[test]
fn model_store_and_webhook_import_nothing_from_the_layers_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for (layer, forbidden) in RULES {
        let mut paths = Vec::new();
        files(&src.join(layer), &mut paths);
        assert!(!paths.is_empty(), "no files under src/{layer}");
        for path in paths {
            for hit in named_layers(&std::fs::read_to_string(&path).unwrap(), forbidden) {
                problems.push(format!("{}: {hit}", path.strip_prefix(&src).unwrap().display()));
            }
        }
    }
    assert!(problems.is_empty(), "a lower layer names a higher one:\n{}", problems.join("\n"));
}

#[test]
fn the_check_sees_imports_and_paths_but_not_comments_or_longer_names() {
    let src = "use crate::http::Api;\nlet x = crate::webhook::ssrf::check();\n// crate::http in a comment\nuse crate::httpish;";
    assert_eq!(named_layers(src, &["http", "webhook"]).len(), 2);
}

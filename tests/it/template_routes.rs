//! Routes are written twice: in `paygate::http`'s route table (which the Lambdas and `paygate dev`
//! serve) and `paygate_dashboard::ROUTES`, and in template.yaml. These tests hold the two equal, route by route and function by
//! function, and check that `make deploy-local`'s pre-deploy step (scripts/deploy_local.py) lowers
//! every template route, so a new route cannot silently go missing anywhere.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use paygate_cli::stack::provision::TEMPLATE;
use serde_norway::Value;

/// `METHOD /path` of every HttpApi event of every function in the template, with the function.
fn template_routes() -> BTreeSet<(String, String)> {
    let doc: Value = serde_norway::from_str(TEMPLATE).unwrap();
    let mut keys = BTreeSet::new();
    for (name, res) in doc["Resources"].as_mapping().unwrap() {
        let Some(events) = res["Properties"]["Events"].as_mapping() else { continue };
        for (_, e) in events {
            // The $default route (no path) is held by its own test below.
            if e["Type"].as_str() == Some("HttpApi") && e["Properties"]["Path"].is_string() {
                let p = &e["Properties"];
                let key = format!("{} {}", p["Method"].as_str().unwrap().to_uppercase(), p["Path"].as_str().unwrap());
                keys.insert((key, name.as_str().unwrap().to_owned()));
            }
        }
    }
    keys
}

#[test]
fn the_route_table_and_the_template_agree_and_every_route_is_lowered_for_the_emulator() {
    let with_functions = template_routes();
    assert!(with_functions.len() >= 11, "{with_functions:?}");
    let mut table: BTreeSet<(String, String)> = paygate::http::routes().iter().map(|r| (r.key(), r.function.logical_id().to_owned())).collect();
    table.extend(paygate_dashboard::ROUTES.iter().map(|r| (r.to_string(), paygate_dashboard::LOGICAL_ID.to_owned())));
    assert_eq!(table, with_functions, "paygate::http::table() and paygate_dashboard::ROUTES differ from template.yaml (route or function)");
    let mut template: BTreeSet<String> = with_functions.into_iter().map(|(key, _)| key).collect();
    template.insert("$default".to_owned());

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/build-venv/bin/python");
    assert!(python.exists(), "{} is missing: `make test` (or `scripts/local.sh tools`) installs it", python.display());
    let out = Command::new(python).arg(root.join("scripts/deploy_local.py")).arg("routes").arg(root.join("template.yaml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lowered: BTreeSet<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lowered, template, "the pre-deploy step lowers exactly the template's routes");
}

/// Exactly one function takes the API's `$default` route (every path no route matches), and its
/// router answers unmatched paths in the Stripe shape.
#[test]
fn one_function_takes_the_default_route() {
    let doc: Value = serde_norway::from_str(TEMPLATE).unwrap();
    let mut owners = Vec::new();
    for (name, res) in doc["Resources"].as_mapping().unwrap() {
        let Some(events) = res["Properties"]["Events"].as_mapping() else { continue };
        for (_, e) in events {
            if e["Type"].as_str() == Some("HttpApi") && e["Properties"]["Path"].is_null() {
                assert!(e["Properties"]["Method"].is_null(), "{name:?}: a default route has neither path nor method");
                owners.push(name.as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(owners, ["GetEventFunction"]);
}

/// Every function's DynamoDB permissions are explicit action lists: no SAM policy template that
/// grants more than the code calls (`DynamoDBCrudPolicy` and `DynamoDBReadPolicy` include `Scan`,
/// `DynamoDBWritePolicy` `BatchWriteItem`), no `Scan` and no wildcard anywhere, `DeleteItem` only
/// where an item is deleted (the endpoints function: endpoints, idempotency records, health),
/// and the delivery function can only read endpoints in a batch and disable them.
#[test]
fn function_policies_grant_only_what_the_code_calls() {
    let doc: Value = serde_norway::from_str(TEMPLATE).unwrap();
    let mut deletes = Vec::new();
    for (name, res) in doc["Resources"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        for policy in res["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for template in ["DynamoDBCrudPolicy", "DynamoDBReadPolicy", "DynamoDBWritePolicy"] {
                assert!(policy.get(template).is_none(), "{name}: {template} grants more than the code calls; list the actions");
            }
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                let actions: Vec<String> = match &statement["Action"] {
                    Value::String(a) => vec![a.clone()],
                    Value::Sequence(list) => list.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
                    other => panic!("{name}: Action {other:?}"),
                };
                let resources = format!("{:?}", statement["Resource"]);
                for action in &actions {
                    assert!(!action.ends_with('*'), "{name}: wildcard action {action}");
                    assert_ne!(action, "dynamodb:Scan", "{name}: no function scans a table");
                    if action == "dynamodb:DeleteItem" {
                        deletes.push(name.to_owned());
                    }
                    if name == "DeliverWebhooksFunction" && resources.contains("WebhookEndpointsTable") {
                        assert!(
                            ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"].contains(&action.as_str()),
                            "the delivery function may not {action} endpoints"
                        );
                    }
                }
            }
        }
    }
    deletes.dedup();
    // Endpoints (and their health) are deleted by the webhook API; both it and the API keys'
    // function release an Idempotency-Key claim a failed request left (DeleteItem).
    assert_eq!(deletes, ["WebhookEndpointsFunction", "ApiKeysFunction"], "DeleteItem only where items are deleted");
}

/// Every route of the table is in openapi.yaml with its method, documents the 403 a restricted
/// key without the permission gets, and nothing else is documented.
#[test]
fn openapi_documents_every_route_and_its_permission_error() {
    let spec = integration_tests::openapi::spec();
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "post", "delete"] {
            if let Some(op) = item.get(method) {
                documented.insert(format!("{} {path}", method.to_uppercase()));
                assert!(op["responses"].get("403").is_some(), "{method} {path}: the 403 permission_error is documented");
            }
        }
    }
    let table: BTreeSet<String> = paygate::http::routes().iter().map(|r| r.key()).collect();
    assert_eq!(table, documented, "paygate::http::table() and openapi.yaml differ");
    let types = &spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["type"]["enum"];
    assert!(types.as_array().unwrap().iter().any(|t| t == "permission_error"));
}

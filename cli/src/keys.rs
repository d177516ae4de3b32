//! `paygate keys`: the `/v1/api_keys` routes for a secret key, from the terminal. Each command is
//! one request to the API's own router, run in this process over the stack's tables (the local
//! servers, or with `--deployed` the emulator's), so it answers exactly what the API answers.
//! Prints the response's JSON; an error response is the command's error.

use axum::body::{Body, to_bytes};
use http::Request;
use tower::ServiceExt;

use crate::commands::CliResult;
use crate::stack::Stack;

/// What `paygate keys` does.
#[derive(Debug, Clone)]
pub enum KeysCommand {
    List,
    CreateRestricted { name: Option<String>, events: String, webhook_endpoints: String },
    Roll { id: String, expires_in: u32 },
    Revoke { id: String },
}

/// Runs `command` with `api_key` (a secret key) and prints the answer.
pub async fn run(stack: &Stack, api_key: &str, command: KeysCommand) -> CliResult {
    let (method, path, form): (&str, String, Vec<(&str, String)>) = match &command {
        KeysCommand::List => ("GET", "/v1/api_keys?limit=100".to_owned(), vec![]),
        KeysCommand::CreateRestricted { name, events, webhook_endpoints } => {
            let mut form = vec![("permissions[events]", events.clone()), ("permissions[webhook_endpoints]", webhook_endpoints.clone())];
            if let Some(n) = name {
                form.push(("name", n.clone()));
            }
            ("POST", "/v1/api_keys".to_owned(), form)
        }
        KeysCommand::Roll { id, expires_in } => ("POST", format!("/v1/api_keys/{}/roll", encode(id)), vec![("expires_in", expires_in.to_string())]),
        KeysCommand::Revoke { id } => ("POST", format!("/v1/api_keys/{}/revoke", encode(id)), vec![]),
    };
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {api_key}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))?;
    let response = crate::gateway::app(stack.functions()).oneshot(request).await?;
    let status = response.status();
    let json: serde_json::Value = serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await?)?;
    if !status.is_success() {
        let error = &json["error"];
        anyhow::bail!(
            "{} ({} {})",
            error["message"].as_str().unwrap_or("error"),
            status.as_u16(),
            error["code"].as_str().or(error["type"].as_str()).unwrap_or("")
        );
    }
    println!("{json}");
    Ok(())
}

fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

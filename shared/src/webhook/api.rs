//! The webhook HTTP API (one function, routed by API Gateway's route key):
//! `POST|GET /v1/webhook_endpoints`, `GET|POST|DELETE /v1/webhook_endpoints/{id}`,
//! `POST /v1/webhook_endpoints/{id}/rotate_secret`, `POST /v1/webhook_endpoints/{id}/resend`,
//! `POST /v1/webhook_endpoints/{id}/recover`,
//! `GET /v1/events/{id}/deliveries`. Bodies are JSON or form-encoded (`enabled_events[]=a` and
//! `enabled_events[0]=a`); every POST honours `Idempotency-Key`.

use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value, json};

use crate::api::{no_query_parameters, path_param, principal, respond, response, route_key, status_and_body};
use crate::error::ApiError;
use crate::ids::{CreatedAt, EventId, Principal, unix_now};
use crate::list::{Limit, parse_limit, parse_time};
use crate::store::EventStore;
use crate::webhook::deliveries::DeliveryStore;
use crate::webhook::endpoints::{EnabledEvents, Endpoint, EndpointId, EndpointStatus, EndpointStore, new_endpoint, rotate};
use crate::webhook::fanout::{DeliveryMessage, Fanout};
use crate::webhook::idempotency::{Claim, IdempotencyKey, IdempotencyStore, fingerprint};
use crate::webhook::ssrf::{UrlPolicy, check_url};

const MAX_DESCRIPTION: usize = 5000;
/// The largest request body accepted: every parameter at its longest fits easily.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the webhook API needs, built once.
#[derive(Debug, Clone)]
pub struct WebhookApi {
    pub endpoints: EndpointStore,
    pub idempotency: IdempotencyStore,
    pub deliveries: DeliveryStore,
    pub events: EventStore,
    pub fanout: Fanout,
    pub policy: UrlPolicy,
}

/// Body parameters, form or JSON, as one JSON object (lists as arrays).
fn body_params(req: &Request) -> Result<Map<String, Value>, ApiError> {
    let raw: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if raw.len() > MAX_BODY_BYTES {
        return Err(ApiError::InvalidRequest {
            code: "parameter_invalid",
            message: format!("The request body is {} bytes; at most {MAX_BODY_BYTES} are accepted.", raw.len()),
            param: None,
        });
    }
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let is_json = content_type.starts_with("application/json") || raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if is_json {
        return match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(ApiError::InvalidRequest {
                code: "parameter_invalid",
                message: "The request body is not a JSON object.".into(),
                param: None,
            }),
        };
    }
    let mut out = Map::new();
    for (k, v) in form_urlencoded::parse(raw) {
        let list_name = k
            .strip_suffix(']')
            .and_then(|s| s.split_once('['))
            .filter(|(_, idx)| idx.is_empty() || idx.bytes().all(|b| b.is_ascii_digit()))
            .map(|(name, _)| name.to_owned());
        match list_name {
            Some(name) => {
                let entry = out.entry(name).or_insert_with(|| Value::Array(vec![]));
                match entry {
                    Value::Array(a) => a.push(Value::String(v.into_owned())),
                    _ => return Err(ApiError::invalid("parameter_invalid", k.as_ref(), format!("{k} was given both as a list and a value."))),
                }
            }
            None => {
                if out.insert(k.to_string(), Value::String(v.into_owned())).is_some() {
                    return Err(ApiError::invalid("parameter_duplicated", k.as_ref(), format!("The parameter {k} was given more than once.")));
                }
            }
        }
    }
    Ok(out)
}

/// Typed access to body parameters; whatever is left over at the end is unknown.
struct Params(Map<String, Value>);

impl Params {
    fn string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid("parameter_invalid", name, format!("{name} must be a string."))),
        }
    }

    fn required(&mut self, name: &str) -> Result<String, ApiError> {
        self.string(name)?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::invalid("parameter_missing", name, format!("Missing required param: {name}.")))
    }

    /// Unix seconds (a JSON number or a string) or an RFC 3339 string.
    fn timestamp(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => parse_time(name, &s).map(Some),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| ApiError::invalid("parameter_invalid", name, format!("{name} must be unix seconds (0 or more) or RFC 3339."))),
            Some(_) => Err(ApiError::invalid("parameter_invalid", name, format!("{name} must be unix seconds or RFC 3339."))),
        }
    }

    fn list(&mut self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    _ => Err(ApiError::invalid("parameter_invalid", name, format!("{name} must be a list of strings."))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::invalid("parameter_invalid", name, format!("{name} must be a list ({name}[]=…)."))),
        }
    }

    /// `enabled_events`, or its other name `events` (the reference's clients send it); not both.
    fn enabled_events(&mut self) -> Result<Option<EnabledEvents>, ApiError> {
        match (self.list("enabled_events")?, self.list("events")?) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "parameters_exclusive",
                "events",
                "You may only specify one of these parameters: enabled_events, events.",
            )),
            (Some(v), None) => EnabledEvents::parse(&v).map(Some),
            // A bad list names the parameter it came in.
            (None, Some(v)) => EnabledEvents::parse(&v).map(Some).map_err(|e| match e {
                ApiError::InvalidRequest { code, message, .. } => ApiError::InvalidRequest { code, message, param: Some("events".into()) },
                other => other,
            }),
            (None, None) => Ok(None),
        }
    }

    fn done(self) -> Result<(), ApiError> {
        match self.0.keys().next() {
            Some(k) => Err(ApiError::unknown_parameter(k)),
            None => Ok(()),
        }
    }
}

fn description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(ApiError::invalid(
            "parameter_invalid",
            "description",
            format!("description is at most {MAX_DESCRIPTION} characters."),
        )),
        Some(d) if d.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn endpoint_missing(id: &str) -> ApiError {
    ApiError::not_found("webhook endpoint", id, "id")
}

impl WebhookApi {
    /// The function's handler.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let route = route_key(&req).unwrap_or_default().to_owned();
        let principal = match principal(&req) {
            Ok(p) => p,
            Err(e) => return respond(&req, Err(e)),
        };
        if !route.starts_with("POST ") {
            let result = match no_query_parameters(&req) {
                Err(e) if !route.ends_with("/v1/webhook_endpoints") => Err(e),
                _ => self.read(&route, &principal, &req).await,
            };
            return respond(&req, result);
        }
        // POSTs: parse once, then claim the idempotency key for exactly these parameters.
        let params = match body_params(&req) {
            Ok(p) => p,
            Err(e) => return respond(&req, Err(e)),
        };
        let id = path_param(&req, "id");
        let print = fingerprint(&[&route, &id], &Value::Object(params.clone()));
        let key = match IdempotencyKey::from_header(req.headers().get("idempotency-key")) {
            Ok(k) => k,
            Err(e) => return respond(&req, Err(e)),
        };
        let claim = match self.idempotency.claim(&principal, key.as_ref(), &print).await {
            Ok(c) => c,
            Err(e) => return respond(&req, Err(e)),
        };
        if let Claim::Replay(status, body) = &claim {
            return response(&req, *status, body, true);
        }
        let (status, body) = status_and_body(self.write(&route, &principal, &id, Params(params)).await);
        if let Claim::Fresh(key) = &claim {
            if let Err(e) = self.idempotency.finish(&principal, key, status, &body).await {
                tracing::error!(error = %e, "could not store the idempotent response");
            }
        }
        response(&req, status, &body, false)
    }

    async fn read(&self, route: &str, principal: &Principal, req: &Request) -> Result<Value, ApiError> {
        let id = path_param(req, "id");
        match route {
            "GET /v1/webhook_endpoints" => self.list(principal, req.uri().query().unwrap_or("")).await,
            "GET /v1/webhook_endpoints/{id}" => Ok(self.endpoint(principal, &id).await?.to_json(false)),
            "DELETE /v1/webhook_endpoints/{id}" => {
                let ep_id: EndpointId = id.parse().map_err(|_| endpoint_missing(&id))?;
                if !self.endpoints.delete(principal, &ep_id).await? {
                    return Err(endpoint_missing(&id));
                }
                Ok(json!({"id": ep_id, "object": "webhook_endpoint", "deleted": true}))
            }
            "GET /v1/events/{id}/deliveries" => {
                let missing = || ApiError::not_found("event", &id, "id");
                let event_id: EventId = id.parse().map_err(|_| missing())?;
                self.events.get(principal, event_id).await?.ok_or_else(missing)?;
                let attempts = self.deliveries.attempts(principal, event_id).await?;
                Ok(json!({
                    "object": "list",
                    "data": attempts.iter().map(|a| a.to_json()).collect::<Vec<_>>(),
                    "has_more": false,
                    "url": format!("/v1/events/{event_id}/deliveries"),
                }))
            }
            _ => Err(ApiError::InvalidRequest { code: "route_unknown", message: format!("Unrecognized request URL ({route})."), param: None }),
        }
    }

    async fn write(&self, route: &str, principal: &Principal, id: &str, mut p: Params) -> Result<Value, ApiError> {
        match route {
            "POST /v1/webhook_endpoints" => {
                let url = p.required("url")?;
                let enabled_events = p
                    .enabled_events()?
                    .ok_or_else(|| ApiError::invalid("parameter_missing", "enabled_events", "Missing required param: enabled_events."))?;
                let description = description(p.string("description")?)?;
                p.done()?;
                let url = check_url(&url, principal.mode, self.policy).await?;
                let endpoint = new_endpoint(principal.mode, url.as_str().to_owned(), enabled_events, description);
                self.endpoints.create(principal, &endpoint).await??;
                tracing::info!(endpoint_id = %endpoint.id, "webhook endpoint created");
                Ok(endpoint.to_json(true))
            }
            "POST /v1/webhook_endpoints/{id}" => {
                let mut endpoint = self.endpoint(principal, id).await?;
                let url = p.string("url")?;
                let events = p.enabled_events()?;
                let desc = p.string("description")?;
                let status = p.string("status")?;
                p.done()?;
                if let Some(url) = url {
                    endpoint.url = check_url(&url, principal.mode, self.policy).await?.as_str().to_owned();
                }
                if let Some(events) = events {
                    endpoint.enabled_events = events;
                }
                if desc.is_some() {
                    endpoint.description = description(desc)?;
                }
                if let Some(status) = status {
                    endpoint.status = status.parse::<EndpointStatus>().map_err(|_| {
                        ApiError::invalid("parameter_invalid", "status", "status must be enabled or disabled.")
                    })?;
                }
                self.save(principal, &endpoint, id).await?;
                Ok(endpoint.to_json(false))
            }
            "POST /v1/webhook_endpoints/{id}/rotate_secret" => {
                p.done()?;
                let mut endpoint = self.endpoint(principal, id).await?;
                rotate(&mut endpoint, unix_now());
                self.save(principal, &endpoint, id).await?;
                tracing::info!(endpoint_id = %endpoint.id, "webhook secret rotated");
                Ok(endpoint.to_json(true))
            }
            "POST /v1/webhook_endpoints/{id}/resend" => {
                let raw = p.required("event")?;
                p.done()?;
                let endpoint = self.endpoint(principal, id).await?;
                let missing = || ApiError::not_found("event", &raw, "event");
                let event_id: EventId = raw.parse().map_err(|_| missing())?;
                self.events.get(principal, event_id).await?.ok_or_else(missing)?;
                if endpoint.status != EndpointStatus::Enabled {
                    return Err(ApiError::invalid("endpoint_disabled", "id", "The webhook endpoint is disabled; enable it first."));
                }
                self.deliveries.reopen(principal, event_id, &endpoint.id).await?;
                self.schedule(principal, &endpoint.id, &[event_id]).await;
                Ok(json!({"object": "webhook_resend", "event": event_id, "endpoint": endpoint.id, "status": "pending"}))
            }
            "POST /v1/webhook_endpoints/{id}/recover" => {
                let since = p
                    .timestamp("since")?
                    .ok_or_else(|| ApiError::invalid("parameter_missing", "since", "Missing required param: since."))?;
                p.done()?;
                let endpoint = self.endpoint(principal, id).await?;
                if endpoint.status != EndpointStatus::Enabled {
                    return Err(ApiError::invalid("endpoint_disabled", "id", "The webhook endpoint is disabled; enable it first."));
                }
                let queued = self.recover(principal, &endpoint.id, since).await?;
                Ok(json!({
                    "object": "webhook_recovery",
                    "endpoint": endpoint.id,
                    "since": CreatedAt(since),
                    "queued": queued.len(),
                    "events": queued,
                }))
            }
            _ => Err(ApiError::InvalidRequest { code: "route_unknown", message: format!("Unrecognized request URL ({route})."), param: None }),
        }
    }

    /// Re-opens every finally failed delivery to `endpoint` of the events created at or after
    /// `since` (unix seconds) and schedules them; returns those events. Idempotent: what it re-opened
    /// is pending, and no longer failed, so a second run finds only newer failures.
    pub async fn recover(&self, principal: &Principal, endpoint: &EndpointId, since: u64) -> Result<Vec<EventId>, ApiError> {
        let Some(since) = EventId::first_at_secs(since) else { return Ok(Vec::new()) };
        let mut queued = Vec::new();
        for event_id in self.deliveries.failed_since(principal, endpoint, since).await? {
            // False when the event expired meanwhile, or another recover got there first.
            if self.deliveries.reopen(principal, event_id, endpoint).await? {
                queued.push(event_id);
            }
        }
        self.schedule(principal, endpoint, &queued).await;
        tracing::info!(endpoint_id = %endpoint, queued = queued.len(), "failed deliveries recovered");
        Ok(queued)
    }

    /// Enqueues re-opened deliveries. They are pending in DynamoDB already, so should SQS refuse,
    /// the sweeper sends them after the grace: logged, not failed.
    async fn schedule(&self, principal: &Principal, endpoint: &EndpointId, events: &[EventId]) {
        let messages: Vec<DeliveryMessage> = events.iter().map(|e| DeliveryMessage::new(principal, *e, endpoint.clone())).collect();
        if let Err(e) = self.fanout.enqueue(&messages).await {
            tracing::warn!(error = %e, "could not enqueue re-opened deliveries; the sweeper sends them");
        }
    }

    async fn endpoint(&self, principal: &Principal, id: &str) -> Result<Endpoint, ApiError> {
        let ep_id: EndpointId = id.parse().map_err(|_| endpoint_missing(id))?;
        self.endpoints.get(principal, &ep_id).await?.ok_or_else(|| endpoint_missing(id))
    }

    async fn save(&self, principal: &Principal, endpoint: &Endpoint, id: &str) -> Result<(), ApiError> {
        if !self.endpoints.replace(principal, endpoint).await? {
            return Err(endpoint_missing(id));
        }
        Ok(())
    }

    /// Stripe's list shape; at most 16 endpoints exist, read in one Query and paged here.
    async fn list(&self, principal: &Principal, query: &str) -> Result<Value, ApiError> {
        let mut limit = Limit::default();
        let mut after: Option<EndpointId> = None;
        let mut before: Option<EndpointId> = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let cursor = |v: &str, param: &str| {
                v.parse::<EndpointId>().map_err(|_| ApiError::invalid("resource_missing", param, format!("Invalid {param}: '{v}'.")))
            };
            match k.as_ref() {
                "limit" => limit = parse_limit(&v)?,
                "starting_after" => after = Some(cursor(&v, "starting_after")?),
                "ending_before" => before = Some(cursor(&v, "ending_before")?),
                other => return Err(ApiError::unknown_parameter(other)),
            }
        }
        if after.is_some() && before.is_some() {
            return Err(ApiError::invalid("parameters_exclusive", "ending_before", "You may only specify one of these parameters: starting_after, ending_before."));
        }
        let all = self.endpoints.list(principal).await?; // newest first
        let (page, has_more): (Vec<&Endpoint>, bool) = match (&after, &before) {
            (Some(a), _) => {
                let rest: Vec<&Endpoint> = all.iter().filter(|e| e.id < *a).collect();
                (rest.iter().take(limit.get()).copied().collect(), rest.len() > limit.get())
            }
            (_, Some(b)) => {
                let newer: Vec<&Endpoint> = all.iter().filter(|e| e.id > *b).collect();
                let start = newer.len().saturating_sub(limit.get());
                (newer[start..].to_vec(), start > 0)
            }
            _ => (all.iter().take(limit.get()).collect(), all.len() > limit.get()),
        };
        Ok(json!({
            "object": "list",
            "data": page.iter().map(|e| e.to_json(false)).collect::<Vec<_>>(),
            "has_more": has_more,
            "url": "/v1/webhook_endpoints",
        }))
    }
}

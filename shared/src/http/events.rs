//! `GET /v1/events/{id}`, `GET /v1/events` and `GET /v1/events/{id}/deliveries`.

use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use axum::extract::State;
use serde_json::Value;

use crate::error::ApiError;
use crate::event::EventJson;
use crate::http::Api;
use crate::http::extract::{NoQuery, PathId};
use crate::ids::{EventId, Principal};
use crate::list::{ListParams, Page, list_events};

/// The event, or a 404 naming the id (a malformed id names no event, so the table is not read).
async fn event_of(api: &Api, principal: &Principal, raw: &str) -> Result<EventJson, ApiError> {
    let missing = || ApiError::not_found("event", raw, "id");
    let id: EventId = raw.parse().map_err(|_| missing())?;
    api.events.get(principal, id).await?.ok_or_else(missing)
}

/// `GET /v1/events/{id}`.
pub async fn retrieve(State(api): State<Arc<Api>>, principal: Principal, _: NoQuery, PathId(id): PathId) -> Result<Json<EventJson>, ApiError> {
    Ok(Json(event_of(&api, &principal, &id).await?))
}

/// `GET /v1/events`.
pub async fn list(State(api): State<Arc<Api>>, principal: Principal, params: ListParams) -> Result<Response, ApiError> {
    let found = list_events(&api.events, &principal, &params).await?;
    Ok(Json(found.page.to_json("/v1/events")).into_response())
}

/// `GET /v1/events/{id}/deliveries`: every delivery attempt of the event, to every endpoint.
pub async fn deliveries(State(api): State<Arc<Api>>, principal: Principal, _: NoQuery, PathId(id): PathId) -> Result<Response, ApiError> {
    let event = event_of(&api, &principal, &id).await?;
    let attempts = api.deliveries.attempts(&principal, event.id).await?;
    let data: Vec<Value> = attempts.iter().map(|a| a.to_json()).collect();
    Ok(Json(Page { data, has_more: false }.to_json(&format!("/v1/events/{}/deliveries", event.id))).into_response())
}

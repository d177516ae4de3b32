//! `GET /v1/events/{id}`, `GET /v1/events` and `GET /v1/events/{id}/deliveries`.

use std::cmp::Reverse;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::http::Api;
use crate::http::extract::{NoQuery, PathId, Query};
use crate::http::objects::{AttemptObject, ListObject};
use crate::model::delivery::Attempt;
use crate::model::event::EventJson;
use crate::model::ids::{AttemptId, EventId, Principal};
use crate::model::list::{Cursor, ListParams, Page, PageQuery};
use crate::store::event_list::list_events;

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
    Ok(Json(ListObject::of(&found.page, "/v1/events")).into_response())
}

/// `GET /v1/events/{id}/deliveries`: the delivery attempts of the event, to every endpoint, oldest
/// first, a page at a time (`limit`, `starting_after` or `ending_before` an attempt's id). An event
/// has at most 16 endpoints' schedules of attempts, read in one Query.
pub async fn deliveries(State(api): State<Arc<Api>>, principal: Principal, PathId(id): PathId, Query(mut p): Query) -> Result<Response, ApiError> {
    let query = p.page::<AttemptId>("a delivery attempt id (whatt_…)")?;
    p.done()?;
    let event = event_of(&api, &principal, &id).await?;
    let attempts = api.deliveries.attempts_with_ids(&principal, event.id).await?;
    // Oldest first: a page is what `Page::of` takes of the list read backwards.
    let query = PageQuery {
        limit: query.limit,
        cursor: query.cursor.map(|c| match c {
            Cursor::StartingAfter(a) => Cursor::StartingAfter(Reverse(a)),
            Cursor::EndingBefore(b) => Cursor::EndingBefore(Reverse(b)),
        }),
    };
    let keyed: Vec<(Reverse<AttemptId>, Attempt)> = attempts.into_iter().map(|(id, a)| (Reverse(id), a)).collect();
    let page = Page::of(keyed, |(id, _)| id, &query);
    let data: Vec<AttemptObject> = page.data.iter().map(|(Reverse(id), a)| AttemptObject::new(*id, a)).collect();
    let url = format!("/v1/events/{}/deliveries", event.id);
    Ok(Json(ListObject::of(&Page { data, has_more: page.has_more }, &url)).into_response())
}

//! The dashboard: a single-page app on the public API (`web/`, bundled at build time by build.rs)
//! embedded in the binary. [`router`] serves it at `/dashboard`, in its own Lambda
//! (functions/dashboard) and in `paygate dev`. The page itself holds no data: it signs in with a key
//! its user pastes and reads everything through the API.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use paygate::{EventType, Family};
use serde_json::json;

/// One file of the bundle, and its gzip.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub body: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Scripts and styles from this origin only, no inline script or style, and requests to this
/// origin only (the API): event data is merchant-controlled, and this keeps any of it that were
/// ever rendered as markup from running or calling out.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard function's logical id in template.yaml, and its routes there (API Gateway's
/// syntax; `tests/it/template_routes.rs` holds the template to them).
pub const LOGICAL_ID: &str = "DashboardFunction";
pub const ROUTES: &[&str] = &["GET /dashboard", "GET /dashboard/{proxy+}"];

/// `GET /dashboard` (the page), `/dashboard/` (redirected to it), `/dashboard/event-types.json`
/// and `/dashboard/{file}` (the bundle's files).
pub fn router() -> Router {
    Router::new()
        .route("/dashboard", get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        // Relative, so that it stays under the stage: /dev/dashboard/ → /dev/dashboard.
        .route("/dashboard/", get(|| async { secured((StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "../dashboard")]).into_response()) }))
        .route("/dashboard/event-types.json", get(event_types))
        .route("/dashboard/{file}", get(|Path(file): Path<String>, headers: HeaderMap| async move { asset(&file, &headers) }))
}

/// The bundle's total gzipped size (what a first visit downloads).
pub fn gzipped_bytes() -> usize {
    ASSETS.iter().map(|a| a.gzip.len()).sum()
}

fn asset(name: &str, headers: &HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return secured((StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Not found").into_response());
    };
    let content_type = match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    // The page is checked every time; the other files have their hash in their names.
    let cache = if name == "index.html" { "no-cache" } else { "public, max-age=31536000, immutable" };
    let gzip = accepts_gzip(headers);
    let mut response =
        ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache), (header::VARY, "accept-encoding")], if gzip { a.gzip } else { a.body })
            .into_response();
    if gzip {
        response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    secured(response)
}

/// Whether `Accept-Encoding` takes gzip (and does not refuse it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0)));
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

/// The 27 event types with the API reference's descriptions, by family: what the type pickers show.
async fn event_types() -> Response {
    static BODY: LazyLock<String> = LazyLock::new(|| {
        let families: Vec<_> = Family::ALL
            .iter()
            .map(|&f| {
                let types: Vec<_> =
                    EventType::ALL.iter().filter(|t| t.family() == f).map(|t| json!({"type": t.as_str(), "description": t.description()})).collect();
                json!({"family": f.as_str(), "types": types})
            })
            .collect();
        json!({"families": families}).to_string()
    });
    secured(([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-cache")], BODY.as_str()).into_response())
}

/// The headers every dashboard response carries.
fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, accept_encoding: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::get(path);
        if let Some(e) = accept_encoding {
            req = req.header(header::ACCEPT_ENCODING, e);
        }
        let res = router().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = res.into_parts();
        (parts.status, parts.headers, to_bytes(body, usize::MAX).await.unwrap().to_vec())
    }

    #[tokio::test]
    async fn the_page_loads_its_bundle_from_this_origin_under_a_strict_policy() {
        let (status, headers, body) = get("/dashboard", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let html = String::from_utf8(body).unwrap();
        // No inline script or style, and nothing from another origin.
        assert!(!html.contains("<style") && !html.contains(" style=") && !html.contains("http"), "{html}");
        let scripts: Vec<&str> = html.match_indices("<script").map(|(i, _)| &html[i..html[i..].find('>').unwrap() + i]).collect();
        assert_eq!(scripts.len(), 1, "{html}");
        for asset in ["js", "css"] {
            let name = html.split('"').find(|s| s.starts_with("dashboard/app-") && s.ends_with(asset)).unwrap_or_else(|| panic!("no .{asset} in {html}"));
            let (status, headers, body) = get(&format!("/{name}"), None).await;
            assert_eq!(status, StatusCode::OK, "{name}");
            assert!(headers[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
            assert!(!body.is_empty());
        }
    }

    #[tokio::test]
    async fn gzip_is_served_to_clients_that_take_it() {
        let (_, plain_headers, plain) = get("/dashboard", Some("gzip;q=0, br")).await;
        assert!(plain_headers.get(header::CONTENT_ENCODING).is_none());
        let (_, headers, gz) = get("/dashboard", Some("br, gzip")).await;
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(headers[header::VARY], "accept-encoding");
        assert!(gz.starts_with(&[0x1f, 0x8b]) && plain.starts_with(b"<!doctype html>"));
        assert!(gzipped_bytes() < 200_000, "the bundle is {} bytes gzipped", gzipped_bytes());
    }

    #[tokio::test]
    async fn a_trailing_slash_redirects_within_the_stage_and_unknown_files_are_404s() {
        let (status, headers, _) = get("/dashboard/", None).await;
        assert_eq!((status, headers[header::LOCATION].to_str().unwrap()), (StatusCode::PERMANENT_REDIRECT, "../dashboard"));
        let (status, headers, _) = get("/dashboard/nope.js", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
    }

    #[tokio::test]
    async fn event_types_come_with_the_references_descriptions() {
        let (status, _, body) = get("/dashboard/event-types.json", None).await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let families = v["families"].as_array().unwrap();
        assert_eq!(families.len(), Family::ALL.len());
        let types: Vec<&serde_json::Value> = families.iter().flat_map(|f| f["types"].as_array().unwrap()).collect();
        assert_eq!(types.len(), 27);
        assert!(types.iter().any(|t| t["type"] == "payment.succeeded" && t["description"] == "Payment completed successfully"));
    }
}

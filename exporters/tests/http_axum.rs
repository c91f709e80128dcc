//! `HttpTelemetryLayer` inside axum routers: on a router nested in another, the span
//! has the whole path and route (the nested router sees its path without the outer
//! prefix), and the client axum's `ConnectInfo` names.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod spans_seen;
mod telemetry;

use axum::Router;
use axum::routing::get;
use coldstart_bootstrap::Settings;
use coldstart_exporters::http::HttpTelemetryLayer;
use http::Request;
use spans_seen::SEEN;
use tower_service::Service;

#[test]
fn in_a_nested_router_the_span_has_the_whole_path_and_route() {
    let telemetry = telemetry::installed(vec![
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
    ]);
    coldstart_runtime::block_on(&Settings::NONE, async move {
        let users = Router::new()
            .route("/users/{id}", get(|| async { "user" }))
            .layer(HttpTelemetryLayer::new());
        let mut app: Router = Router::new().nest("/api", users);
        let mut request = Request::get("/api/users/7?full=1")
            .body(axum::body::Body::empty())
            .unwrap();
        // What `into_make_service_with_connect_info::<SocketAddr>()` puts in.
        let peer: std::net::SocketAddr = "198.51.100.4:40000".parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let response = app.call(request).await.unwrap();
        assert_eq!(response.status(), 200);
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        telemetry::until(|| !SEEN.lock().unwrap().is_empty()).await;
    });
    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one request, one span: {seen:?}");
    let span = &seen[0];
    assert_eq!(span.name, "GET /api/users/{id}", "{seen:?}");
    assert_eq!(span.attributes["http.route"], "/api/users/{id}");
    assert_eq!(span.attributes["url.path"], "/api/users/7", "{seen:?}");
    assert_eq!(span.attributes["url.query"], "full=1");
    assert_eq!(span.attributes["client.address"], "198.51.100.4");
    assert_eq!(span.attributes["network.peer.port"], "40000");
    assert_eq!(span.error, None, "a 200 is no error");
}

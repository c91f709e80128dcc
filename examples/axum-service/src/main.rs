//! An axum service on `#[coldstart::main]`, whole: what a server needs from coldstart
//! beyond the attribute, in the order the layers go.
//!
//! - `HttpTelemetryLayer` records each request's metrics and server span, labelled by
//!   the route template axum matched (`/users/{id}`, never `/users/42`): added with
//!   `Router::layer`, it runs after axum's routing (feature `axum`). Served with
//!   `ConnectInfo`, the spans name the client.
//! - `FirstResponseLayer` goes outermost (the last `.layer()`): it marks the first
//!   response done once its body is sent, and the exporters (the `/metrics` listener,
//!   `COLDSTART_METRICS_ADDR`, default `127.0.0.1:9464`; the OTLP exporter,
//!   `OTEL_EXPORTER_OTLP_ENDPOINT`) start then, off the first request's path.
//! - `coldstart::draining()` is the graceful shutdown: at SIGTERM or SIGINT the
//!   server stops accepting, answers what it has read, and returns; then the
//!   telemetry is flushed.
//!
//! `PORT` (default 8080) and `BIND` (default `127.0.0.1`) say where it listens.

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use coldstart::FirstResponseLayer;
use coldstart::telemetry::HttpTelemetryLayer;

async fn hello() -> &'static str {
    "hello\n"
}

async fn user(Path(id): Path<u64>) -> String {
    format!("user {id}\n")
}

/// The routes, with coldstart's two layers.
fn app() -> Router {
    Router::new()
        .route("/", get(hello))
        .route("/users/{id}", get(user))
        .layer(HttpTelemetryLayer::new())
        .layer(FirstResponseLayer::new())
}

#[coldstart::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = match std::env::var("PORT") {
        Ok(port) => port
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("set PORT to a port number from 0 to 65535, got `{port}`"))?,
        Err(_) => 8080,
    };
    let listener = tokio::net::TcpListener::bind((bind.as_str(), port)).await?;
    eprintln!(
        "axum-service: listening on http://{}",
        listener.local_addr()?
    );
    // With the peer's address in each request: the spans' `client.address`.
    let app = app().into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(coldstart::draining())
        .await?;
    eprintln!("axum-service: drained");
    Ok(())
}

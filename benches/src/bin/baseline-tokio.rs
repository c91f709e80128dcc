//! Baseline: the http-server example's handler on a bare `#[tokio::main]`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    http_server::serve_baseline("baseline-tokio").await
}

//! Baseline and practical floor: the http-server example's handler on a bare
//! `#[tokio::main(flavor = "current_thread")]` (one thread, nothing else).

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    http_server::serve_baseline("baseline-current-thread").await
}

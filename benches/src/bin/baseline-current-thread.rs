//! Baseline and practical floor: the http-server example's handler on a bare
//! `#[tokio::main(flavor = "current_thread")]` (one thread, nothing else).

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = http_server::listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("baseline-current-thread: listening on http://{addr}");
    http_server::serve(listener, || {}).await?;
    Ok(())
}

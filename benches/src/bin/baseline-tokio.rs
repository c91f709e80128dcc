//! Baseline: the http-server example's handler on a bare `#[tokio::main]`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = http_server::listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("baseline-tokio: listening on http://{addr}");
    http_server::serve(listener, || {}).await?;
    Ok(())
}

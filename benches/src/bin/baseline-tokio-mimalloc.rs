//! Reference: the http-server example's handler on a bare `#[tokio::main]` with
//! mimalloc (default build options) as the global allocator, to separate the
//! allocator's start-up cost from coldstart's own.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = http_server::listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("baseline-tokio-mimalloc: listening on http://{addr}");
    http_server::serve(listener, || {}).await?;
    Ok(())
}

//! The example service on `#[coldstart::main]`: the one-line change from
//! `#[tokio::main]`. Prints where it listens and the plan coldstart chose; set
//! `COLDSTART_LOG=debug` for the whole budget, plan and start-up timeline.

use anyhow::Context;
use tokio::net::TcpListener;

#[coldstart::main]
async fn main() -> anyhow::Result<()> {
    let addr = http_server::listen_addr()?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set PORT or BIND to change it)"))?;
    if let Some(plan) = coldstart::plan() {
        eprintln!(
            "http-server: listening on http://{addr}; plan {} ({}), {} with {} worker thread(s)",
            plan.strategy.value, plan.strategy.reason, plan.flavor.value, plan.worker_threads.value
        );
    }
    http_server::serve(listener).await?;
    Ok(())
}

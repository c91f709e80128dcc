//! The example service on `#[coldstart::main]`: the one-line change from
//! `#[tokio::main]`. Prints where it listens and the plan coldstart chose; set
//! `COLDSTART_LOG=debug` for the whole budget, plan and start-up timeline.
//!
//! Work that the first request does not need waits until the first connection has
//! been served (or the fallback timer fires); that includes installing the shutdown
//! hook, so nothing of it is paid before the first response.

use std::time::Duration;

#[coldstart::main]
async fn main() -> anyhow::Result<()> {
    let (listener, addr) = http_server::bind().await?;
    if let Some(plan) = coldstart::plan() {
        eprintln!(
            "http-server: listening on http://{addr}; plan {} ({}), {} with {} worker thread(s)",
            plan.strategy.value, plan.strategy.reason, plan.flavor.value, plan.worker_threads.value
        );
    }
    coldstart::after_first_request(async {
        coldstart::on_shutdown("goodbye", Duration::from_secs(2), || async {
            eprintln!("http-server: shutdown hook ran");
        });
        eprintln!("http-server: deferred work started after the first response");
    });
    // Until the tower layer marks it when the body is sent, the connection's end does.
    http_server::serve(listener, || {
        coldstart::first_request_done();
    })
    .await?;
    Ok(())
}

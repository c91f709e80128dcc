//! The http-server example's handler on `#[coldstart::main]` with none of coldstart's
//! telemetry and no registrations: what the runtime alone (probe, plan, tuned runtime,
//! first-response mark) adds to a bare `#[tokio::main]` hello. The start-up harness
//! runs it beside the example and the bare baselines (BENCHMARKS.md).

// The example's handler: the same file it serves with (see the file's docs).
#[allow(dead_code, unreachable_pub)]
#[path = "../../../examples/http-server/src/hello.rs"]
mod http_server;
// What the file's `say!` calls, as `$crate::print_line`.
use http_server::print_line;

#[coldstart::main]
async fn main() -> anyhow::Result<()> {
    let (listener, addr) = http_server::bind().await?;
    say!("runtime-alone: listening on http://{addr}");
    let layer = coldstart::FirstResponseLayer::new();
    http_server::serve(listener, layer, || "hello\n", coldstart::draining()).await?;
    Ok(())
}

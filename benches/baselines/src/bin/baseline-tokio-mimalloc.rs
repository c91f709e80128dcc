//! Reference: the http-server example's handler on a bare `#[tokio::main]` with
//! mimalloc as the global allocator (built without transparent huge pages, as the
//! `mimalloc` feature builds it), to separate the allocator's start-up cost from
//! coldstart's own.

// The example's handler: the same file it serves with (see the file's docs).
#[allow(dead_code, unreachable_pub)]
#[path = "../../../../examples/http-server/src/hello.rs"]
mod http_server;
// What the file's `say!` calls, as `$crate::print_line`.
use http_server::print_line;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    http_server::serve_baseline("baseline-tokio-mimalloc").await
}

//! Reference: the http-server example's handler on a bare `#[tokio::main]` with
//! mimalloc as the global allocator (built without transparent huge pages, as the
//! `mimalloc` feature builds it), to separate the allocator's start-up cost from
//! coldstart's own.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    http_server::serve_baseline("baseline-tokio-mimalloc").await
}

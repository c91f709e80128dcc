//! Three slow registrations (statics, 20 ms each, I/O-like), of which the first request needs
//! one: the session keys its answer is built from. Serves like the http-server
//! example. Without a profile all three run before serving; with a recorded one,
//! only the keys do.

use std::time::Duration;

use coldstart::FirstResponseLayer;

const SLOW: Duration = Duration::from_millis(20);

#[coldstart::init]
static SESSION_KEYS: String = {
    std::thread::sleep(SLOW);
    "hello\n".to_string()
};

#[coldstart::init]
static TEMPLATES: Vec<String> = {
    std::thread::sleep(SLOW);
    vec!["index".to_string()]
};

#[coldstart::init]
static CACHE: Vec<u64> = {
    std::thread::sleep(SLOW);
    vec![0; 64]
};

#[coldstart::main]
async fn main() -> anyhow::Result<()> {
    let (listener, _) = http_server::bind().await?;
    http_server::serve(
        listener,
        FirstResponseLayer::new(),
        || &SESSION_KEYS,
        std::future::pending(),
    )
    .await?;
    Ok(())
}

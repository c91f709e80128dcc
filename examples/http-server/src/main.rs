//! The example service on `#[coldstart::main]`: the one-line change from
//! `#[tokio::main]`. Prints where it listens and the plan coldstart chose; set
//! `COLDSTART_LOG=debug` for the whole budget, plan and start-up timeline.
//!
//! Its start-up work is registered with `#[coldstart::init]`: a config every request
//! reads, and a cache warm-up and a client pool the first request does not need. The
//! embedded profile (`coldstart.profile`, recorded by running this service with
//! `COLDSTART_PROFILE_OUT`) puts the last two after the first response. The
//! `FirstResponseLayer` marks that moment when the first body has been sent; deferred
//! work, including installing the shutdown hook, waits for it.

use std::time::Duration;

use coldstart::FirstResponseLayer;

/// What every request needs.
struct Config {
    greeting: String,
}

#[coldstart::init]
static CONFIG: Config = Config {
    greeting: std::env::var("GREETING").map_or_else(|_| "hello\n".to_string(), |g| g + "\n"),
};

/// Stands in for filling a cache from a remote store (I/O-bound, 40 ms). A function
/// has no reads to profile, so it declares its phase.
#[coldstart::init(deferred)]
async fn warm_cache() {
    tokio::time::sleep(Duration::from_millis(40)).await;
}

/// Stands in for a pool of connections to a backend the first request does not call
/// (blocking connects, 25 ms).
#[coldstart::init]
static CLIENT_POOL: Vec<String> = {
    std::thread::sleep(Duration::from_millis(25));
    (0..4).map(|i| format!("backend-{i}")).collect()
};

#[coldstart::main(profile = "coldstart.profile")]
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
    http_server::serve(listener, FirstResponseLayer::new(), || &CONFIG.greeting).await?;
    Ok(())
}

//! Three slow registrations (statics, 20 ms each, I/O-like), of which the first request needs
//! one: the session keys its answer is built from. Serves like the http-server
//! example. Without a profile all three run before serving; with a recorded one,
//! only the keys do.
//!
//! For the measurements of statics run side by side (BENCHMARKS.md): `SLOW_INITS_US`
//! sets each one's length in microseconds (default 20 000), and
//! `SLOW_INITS_WORK=compute` makes each one compute for about that long on the machine
//! of BENCHMARKS.md instead of sleeping.

use std::time::{Duration, Instant};

use coldstart::FirstResponseLayer;

/// One registration's work: a sleep (I/O-like) or a computation (CPU-bound) of about
/// `SLOW_INITS_US`.
fn slow() {
    let us = std::env::var("SLOW_INITS_US")
        .ok()
        .and_then(|us| us.parse().ok())
        .unwrap_or(20_000);
    if std::env::var("SLOW_INITS_WORK").is_ok_and(|w| w == "compute") {
        compute(us * ROUNDS_PER_MS / 1000);
    } else {
        std::thread::sleep(Duration::from_micros(us));
    }
}

/// Rounds of [`compute`] per millisecond on the machine of BENCHMARKS.md
/// (`slow-inits --calibrate` prints what 100 ms of them take). Fixed work: a shared or
/// throttled core makes it take longer, as it would a real computation.
const ROUNDS_PER_MS: u64 = 600_000;

fn compute(rounds: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x)
}

#[coldstart::init]
static SESSION_KEYS: String = {
    slow();
    "hello\n".to_string()
};

#[coldstart::init]
static TEMPLATES: Vec<String> = {
    slow();
    vec!["index".to_string()]
};

#[coldstart::init]
static CACHE: Vec<u64> = {
    slow();
    vec![0; 64]
};

#[coldstart::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--calibrate") {
        let start = Instant::now();
        compute(100 * ROUNDS_PER_MS);
        println!("100 ms of compute took {:?}", start.elapsed());
        return Ok(());
    }
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

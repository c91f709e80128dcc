//! Two slow statics that only both meet if they run at the same time: each says it has
//! started, then waits for the other (up to `DEMO_WAIT_MS`, default 10 s). With a
//! profile that times them at a millisecond or more, they run apart, each on a thread
//! of its own, and meet; one after the other, the first gives up waiting. Two functions,
//! `setup` then `then`, run in turn meanwhile.
//!
//! `DEMO_FAIL=setup` makes `setup` fail. `DEMO_PANIC=LEFT` makes `LEFT` panic once it
//! has met `RIGHT`, which then takes 300 ms more to finish; `setup` waits until `LEFT`
//! has panicked (and 500 ms more), so that `then` comes after the failure.
//! `DEMO_HANG=LEFT` makes `LEFT` go on for two minutes once met (a connect that does
//! not answer); `DEMO_TERM=setup` makes `setup` register a shutdown hook that prints
//! `hook ran`, then send its process SIGTERM.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Which of the two have started: bit 1 `LEFT`, bit 2 `RIGHT`.
static STARTED: Mutex<u8> = Mutex::new(0);
static CHANGED: Condvar = Condvar::new();
static LEFT_PANICKING: AtomicBool = AtomicBool::new(false);

fn asked(variable: &str, value: &str) -> bool {
    std::env::var(variable).is_ok_and(|v| v == value)
}

/// Says `me` has started and waits for both; whether they met.
fn meet(me: u8) -> bool {
    let wait = std::env::var("DEMO_WAIT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    let mut started = STARTED.lock().unwrap_or_else(PoisonError::into_inner);
    *started |= me;
    CHANGED.notify_all();
    let (started, _) = CHANGED
        .wait_timeout_while(started, wait, |s| *s != 0b11)
        .unwrap_or_else(PoisonError::into_inner);
    *started == 0b11
}

fn report(name: &str, met: bool) -> bool {
    println!("init {name} met={met}");
    if name == "LEFT" && asked("DEMO_HANG", "LEFT") {
        std::thread::sleep(Duration::from_secs(120));
    }
    if asked("DEMO_PANIC", "LEFT") {
        if name == "LEFT" {
            LEFT_PANICKING.store(true, Ordering::SeqCst);
            panic!("LEFT exploded");
        }
        std::thread::sleep(Duration::from_millis(300));
        println!("init {name} done");
    }
    met
}

#[coldstart::init]
static LEFT: bool = report("LEFT", meet(0b01));

#[coldstart::init]
static RIGHT: bool = report("RIGHT", meet(0b10));

#[coldstart::init]
fn setup() -> Result<(), String> {
    println!("init setup");
    if asked("DEMO_TERM", "setup") {
        coldstart::on_shutdown("hook", Duration::from_secs(1), || async {
            println!("hook ran");
        });
        // SAFETY: kill(2) of this process, with a signal the hook's handler takes.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    }
    if asked("DEMO_PANIC", "LEFT") {
        let until = Instant::now() + Duration::from_secs(10);
        while !LEFT_PANICKING.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if asked("DEMO_FAIL", "setup") {
        return Err("setup: no such file".to_string());
    }
    Ok(())
}

#[coldstart::init]
fn then() {
    println!("init then");
}

#[coldstart::main]
async fn main() {
    println!("body");
    coldstart::first_request_done();
    coldstart::deferred_done().await;
}

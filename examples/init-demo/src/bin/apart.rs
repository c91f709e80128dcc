//! Two slow statics that only both meet if they run at the same time: each says it has
//! started, then waits for the other (up to `DEMO_WAIT_MS`, default 10 s). With a
//! profile that times them at a millisecond or more, they run apart on the blocking
//! pool and meet; one after the other, the first gives up waiting. `DEMO_PANIC=LEFT`
//! makes `LEFT` panic once it has waited.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Which of the two have started: bit 1 `LEFT`, bit 2 `RIGHT`.
static STARTED: Mutex<u8> = Mutex::new(0);
static CHANGED: Condvar = Condvar::new();

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
    if std::env::var("DEMO_PANIC").is_ok_and(|v| v == name) {
        panic!("{name} exploded");
    }
    met
}

#[coldstart::init]
static LEFT: bool = report("LEFT", meet(0b01));

#[coldstart::init]
static RIGHT: bool = report("RIGHT", meet(0b10));

#[coldstart::init]
fn setup() {
    println!("init setup");
}

#[coldstart::main]
async fn main() {
    println!("body");
    coldstart::first_request_done();
    coldstart::deferred_done().await;
}

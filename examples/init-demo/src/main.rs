//! Prints each step as it happens, so a test can read the order from stdout.
//!
//! `DEMO_READ=NAME,...` lists the statics the "first request" reads; `DEMO_READERS=n`
//! makes n threads read `SLOW` at the same moment before the first response;
//! `DEMO_END_EARLY=1` ends `main` before the first response; `DEMO_RETURN_AT_ONCE=1`
//! right after it, without waiting for the deferred inits, and `DEMO_RETURN_AFTER_MS=n`
//! n ms after it; `DEMO_SILENT_MS=n` waits n ms without answering, then for the
//! deferred inits, and ends; `DEMO_HOOK=1` registers a
//! shutdown hook that prints `shutdown hook ran`, after `DEMO_HOOK_MS`, and
//! `DEMO_EARLY_HOOK=1` one that prints `early hook ran`, registered by the `config`
//! init; `DEMO_CD=dir` makes the body change to that directory first;
//! `DEMO_POOL_WAITS=1` makes the `pool` init wait for the first response, for 300 ms
//! at most (`DEMO_POOL_WAITS=deferred`: for `deferred_done`; `DEMO_POOL_WAITS=signal`:
//! it sends its process SIGTERM, then waits for ever, as a connect to a database that
//! does not answer would); `DEMO_AWAIT_DEFERRED=report`
//! (an `async fn`) or `=must_work` (a function) makes that deferred init wait for
//! `deferred_done`, 300 ms at most; `DEMO_LINGER_MS=n` keeps `main` n ms after its
//! report, before it ends; `DEMO_READY=1` spawns a readiness check that prints `ready`
//! once `deferred_done` resolves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coldstart_bootstrap::init::{Failure, ON_INIT_FAILURE, linkme};
use init_demo::step;

#[coldstart::init(critical)]
fn config() -> Result<(), String> {
    if std::env::var_os("DEMO_EARLY_HOOK").is_some() {
        coldstart::on_shutdown("early hook", Duration::from_secs(1), || async {
            println!("early hook ran");
        });
    }
    step("init_demo::config")
}

#[coldstart::init]
async fn pool() -> Result<(), String> {
    tokio_yield().await;
    if std::env::var_os("DEMO_POOL_WAITS").is_some_and(|how| how == "signal") {
        // SAFETY: kill(2) of this process, with a signal coldstart handles.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        std::future::pending::<()>().await;
    }
    if let Some(how) = std::env::var_os("DEMO_POOL_WAITS") {
        // A mistake: no response can come before this init ends, nor the work after it.
        let wait = async {
            if how == "deferred" {
                coldstart::deferred_done().await;
            } else {
                coldstart::first_response().await;
            }
        };
        tokio::select! {
            () = wait => {}
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    }
    step("init_demo::pool")
}

static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);

#[coldstart::init]
static SLOW: usize = {
    std::thread::sleep(Duration::from_millis(30));
    step("init_demo::SLOW").map_or(0, |()| SLOW_CALLS.fetch_add(1, Ordering::SeqCst) + 1)
};

#[coldstart::init(deferred)]
static LATER: u8 = {
    let _ = step("init_demo::LATER");
    7
};

#[coldstart::init(deferred)]
async fn report() -> Result<(), String> {
    if awaits_deferred("report") {
        // A mistake: `deferred_done` comes only after this init has ended.
        let _ = tokio::time::timeout(Duration::from_millis(300), coldstart::deferred_done()).await;
    }
    step("init_demo::report")
}

#[coldstart::init(deferred, fatal)]
fn must_work() -> Result<(), String> {
    if awaits_deferred("must_work") {
        // The same mistake, on the thread this init runs on.
        let wait = tokio::time::timeout(Duration::from_millis(300), coldstart::deferred_done());
        let _ = tokio::runtime::Handle::current().block_on(wait);
    }
    step("init_demo::must_work")
}

/// `DEMO_AWAIT_DEFERRED` names the deferred init `short`, which then waits for
/// `deferred_done()`, 300 ms at most.
fn awaits_deferred(short: &str) -> bool {
    std::env::var("DEMO_AWAIT_DEFERRED").is_ok_and(|v| v == short)
}

#[coldstart::init(name = "given name")]
fn named() {
    let _ = step("given name");
}

#[linkme::distributed_slice(ON_INIT_FAILURE)]
#[linkme(crate = linkme)]
static TELL: fn(&Failure) = |f| println!("failure hook: {} ({})", f.name, f.error);

async fn tokio_yield() {
    // One real suspension, so the async path is exercised.
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

#[coldstart::main]
async fn main() {
    println!("body");
    if std::env::var_os("DEMO_READY").is_some() {
        // A readiness check: ready once the work after the first response is done.
        tokio::spawn(async {
            coldstart::deferred_done().await;
            println!("ready");
        });
    }
    if let Some(dir) = std::env::var_os("DEMO_CD")
        && let Err(e) = std::env::set_current_dir(&dir)
    {
        eprintln!("init-demo: cannot change to {}: {e}", dir.display());
    }
    if std::env::var_os("DEMO_HOOK").is_some() {
        coldstart::on_shutdown("demo hook", Duration::from_secs(1), || async {
            tokio::time::sleep(Duration::from_millis(ms("DEMO_HOOK_MS"))).await;
            println!("shutdown hook ran");
        });
    }
    if std::env::var_os("DEMO_SILENT_MS").is_some() {
        // A program that answers nothing (or not yet) when the fallback timer fires.
        tokio::time::sleep(Duration::from_millis(ms("DEMO_SILENT_MS"))).await;
        coldstart::deferred_done().await;
        println!("end");
        return;
    }
    if std::env::var_os("DEMO_END_EARLY").is_some() {
        // A program that ends before it ever answers.
        println!("end");
        return;
    }
    let reads = std::env::var("DEMO_READ").unwrap_or_default();
    let readers: usize = std::env::var("DEMO_READERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if readers > 0 {
        let threads: Vec<_> = (0..readers).map(|_| std::thread::spawn(|| *SLOW)).collect();
        let seen: Vec<usize> = threads.into_iter().filter_map(|t| t.join().ok()).collect();
        println!(
            "readers saw {seen:?}; SLOW initialised {} time(s)",
            SLOW_CALLS.load(Ordering::SeqCst)
        );
    }
    for name in reads.split(',').filter(|n| !n.is_empty()) {
        match name {
            "SLOW" => println!("read SLOW = {}", *SLOW),
            "LATER" => println!("read LATER = {}", *LATER),
            "SHARED" => println!("read SHARED = {}", *init_demo::SHARED),
            other => println!("no static {other}"),
        }
    }
    println!("first response");
    coldstart::first_request_done();
    if std::env::var_os("DEMO_RETURN_AFTER_MS").is_some() {
        tokio::time::sleep(Duration::from_millis(ms("DEMO_RETURN_AFTER_MS"))).await;
        println!("end");
        return;
    }
    if std::env::var_os("DEMO_RETURN_AT_ONCE").is_some() {
        // The deferred inits run on while the end of `main` does its work.
        println!("end");
        return;
    }
    coldstart::deferred_done().await;
    println!("deferred done");
    for r in coldstart::inits() {
        println!(
            "report {} {} {:?} needed={} ok={:?}",
            r.name,
            r.kind,
            r.place,
            r.needed,
            r.outcome.as_ref().map(|o| o.is_ok())
        );
    }
    // Give a fatal deferred failure the moment it needs to stop the program.
    tokio::time::sleep(Duration::from_millis(ms("DEMO_LINGER_MS"))).await;
    println!("end");
}

/// Milliseconds from `variable`, 0 when unset.
fn ms(variable: &str) -> u64 {
    std::env::var(variable)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

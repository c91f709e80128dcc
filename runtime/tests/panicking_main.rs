//! A body that panics still ends like one that returns: the shutdown hooks (where the
//! telemetry flush lives) run, then the panic goes on. In a process of its own, since
//! the lifecycle is process-wide.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::{block_on, on_shutdown};

#[test]
fn the_shutdown_hooks_run_before_a_panic_in_the_body_goes_on() {
    let flushed = Arc::new(AtomicBool::new(false));
    let hook_saw = flushed.clone();
    let settings = Settings {
        strategy: Some(coldstart_bootstrap::Strategy::Minimal),
        ..Settings::NONE
    };
    let unwound = std::panic::catch_unwind(|| {
        block_on(&settings, async move {
            on_shutdown("flush", Duration::from_secs(5), move || async move {
                tokio::task::yield_now().await;
                hook_saw.store(true, Ordering::SeqCst);
            });
            tokio::task::yield_now().await;
            panic!("the body gave up");
        })
    });
    let payload = unwound.expect_err("the panic reaches the caller");
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("the body gave up"),
        "the body's own panic, not another one"
    );
    assert!(
        flushed.load(Ordering::SeqCst),
        "the hook ran to its end before the panic went on"
    );
}

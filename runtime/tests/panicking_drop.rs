//! A body cancelled at a signal whose drop panics (one that owns a tokio runtime,
//! which panics when dropped inside another) still has the shutdown hooks run, the
//! telemetry's last flush among them, before that panic goes on: it unwound past
//! them. In a process of its own, since the lifecycle and the signal are process-wide.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::{block_on, on_shutdown};

/// Panics when dropped, as a tokio runtime dropped inside another does.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("dropped where it may not be");
    }
}

#[test]
fn the_shutdown_hooks_run_before_a_panic_in_the_cancelled_bodys_drop_goes_on() {
    let flushed = Arc::new(AtomicBool::new(false));
    let hook_saw = flushed.clone();
    let settings = Settings {
        strategy: Some(coldstart_bootstrap::Strategy::Minimal),
        ..Settings::NONE
    };
    let unwound = std::panic::catch_unwind(|| {
        block_on(&settings, async move {
            // A hook makes the runtime listen for SIGTERM and SIGINT.
            on_shutdown("flush", Duration::from_secs(5), move || async move {
                tokio::task::yield_now().await;
                hook_saw.store(true, Ordering::SeqCst);
            });
            let _owned = PanicsWhenDropped;
            // SAFETY: kill(2) on this process, whose SIGTERM the runtime now takes.
            unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
            // Cancelled at the signal (it does not await `draining()`).
            std::future::pending::<()>().await;
        })
    });
    let payload = unwound.expect_err("the drop's panic reaches the caller");
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("dropped where it may not be"),
        "the drop's own panic"
    );
    assert!(
        flushed.load(Ordering::SeqCst),
        "the hook ran to its end before the panic went on"
    );
}

//! A hook registered while the shutdown hooks run (here by another hook; in a program,
//! by deferred work still running) runs too; one registered once they have all run
//! does not, and is not kept. One `block_on` per process: this file's only test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::lifecycle::shutdown_hooks;
use coldstart_runtime::{block_on, on_shutdown};

static LATE_RAN: AtomicBool = AtomicBool::new(false);
static AFTER_RAN: AtomicBool = AtomicBool::new(false);

#[test]
fn a_hook_registered_while_the_hooks_run_runs_too() {
    block_on(&Settings::NONE, async {
        on_shutdown("first", Duration::from_secs(2), || async {
            on_shutdown("late", Duration::from_secs(2), || async {
                LATE_RAN.store(true, Ordering::SeqCst);
            });
        });
    });
    assert!(LATE_RAN.load(Ordering::SeqCst), "the late hook was lost");
    on_shutdown("after", Duration::from_secs(2), || async {
        AFTER_RAN.store(true, Ordering::SeqCst);
    });
    assert_eq!(shutdown_hooks(), 0, "a hook after the end is not kept");
    assert!(!AFTER_RAN.load(Ordering::SeqCst));
}

//! Work for the end of `main` registered once that end has come (here by a shutdown
//! hook) runs at once: it was kept for an end that had passed, and never ran, unsaid.
//! One `block_on` per process: this file's only test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::lifecycle::at_end_of_main;
use coldstart_runtime::{block_on, on_shutdown};

static EARLY: AtomicBool = AtomicBool::new(false);
static LATE: AtomicBool = AtomicBool::new(false);
static LATER: AtomicBool = AtomicBool::new(false);

#[test]
fn work_for_the_end_of_main_registered_after_it_runs_at_once() {
    block_on(&Settings::NONE, async {
        at_end_of_main(|| EARLY.store(true, Ordering::SeqCst));
        on_shutdown("registers late", Duration::from_secs(2), || async {
            assert!(EARLY.load(Ordering::SeqCst), "the end of main came first");
            at_end_of_main(|| {
                LATE.store(true, Ordering::SeqCst);
                // Work that registers work of its own: run too, not a deadlock.
                at_end_of_main(|| LATER.store(true, Ordering::SeqCst));
            });
            assert!(LATE.load(Ordering::SeqCst), "run as it was registered");
            assert!(LATER.load(Ordering::SeqCst), "and what it registered");
        });
    });
    assert!(LATER.load(Ordering::SeqCst), "the late work ran");
}

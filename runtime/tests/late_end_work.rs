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
/// What the hook saw, checked after `block_on` (a panic in a hook is only said).
static END_CAME_FIRST: AtomicBool = AtomicBool::new(false);
static RAN_AT_ONCE: AtomicBool = AtomicBool::new(false);

#[test]
fn work_for_the_end_of_main_registered_after_it_runs_at_once() {
    block_on(&Settings::NONE, async {
        at_end_of_main(|| EARLY.store(true, Ordering::SeqCst));
        on_shutdown("registers late", Duration::from_secs(2), || async {
            END_CAME_FIRST.store(EARLY.load(Ordering::SeqCst), Ordering::SeqCst);
            at_end_of_main(|| {
                LATE.store(true, Ordering::SeqCst);
                // Work that registers work of its own: run too, not a deadlock.
                at_end_of_main(|| LATER.store(true, Ordering::SeqCst));
            });
            RAN_AT_ONCE.store(
                LATE.load(Ordering::SeqCst) && LATER.load(Ordering::SeqCst),
                Ordering::SeqCst,
            );
        });
    });
    assert!(
        END_CAME_FIRST.load(Ordering::SeqCst),
        "the end of main came first"
    );
    assert!(
        RAN_AT_ONCE.load(Ordering::SeqCst),
        "the late work, and what it registered, ran as it was registered"
    );
}

//! The cap on the shutdown hooks (Lambda's 500 ms after SIGTERM) counts from when the
//! hooks start, not from each hook's first poll: on `current_thread` a hook that
//! blocks the thread before its future (a synchronous write, a blocking client) ran
//! first, and the next hook's deadline then began after it, past the cap, where Lambda
//! would have stopped the process in the middle of it. One `block_on` per process:
//! this file's only test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_bootstrap::plan::Flavor;
use coldstart_runtime::lifecycle::cap_hook_deadlines;
use coldstart_runtime::{block_on, on_shutdown};

static LATER_RAN: AtomicBool = AtomicBool::new(false);

#[test]
fn a_hook_that_blocks_does_not_move_the_cap_for_the_next() {
    let one_thread = Settings {
        flavor: Some(Flavor::CurrentThread),
        ..Settings::NONE
    };
    block_on(&one_thread, async {
        cap_hook_deadlines(Duration::from_millis(100));
        on_shutdown("blocks", Duration::from_secs(30), || {
            std::thread::sleep(Duration::from_millis(400));
            async {}
        });
        on_shutdown("later", Duration::from_secs(30), || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            LATER_RAN.store(true, Ordering::SeqCst);
        });
    });
    // The cap was spent while the first hook blocked: the second is cut, as Lambda
    // would have cut it, and said to be.
    assert!(!LATER_RAN.load(Ordering::SeqCst), "ran past the cap");
}

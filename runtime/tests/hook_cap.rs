//! A cap on the shutdown hooks' deadlines (what coldstart's Lambda integration sets:
//! Lambda stops the process 500 ms after SIGTERM) cuts a hook whose own deadline is
//! longer, and a hook within it finishes. One `block_on` per process: this file's only
//! test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::lifecycle::cap_hook_deadlines;
use coldstart_runtime::{block_on, on_shutdown};

static QUICK_RAN: AtomicBool = AtomicBool::new(false);
static SLOW_CUT: AtomicBool = AtomicBool::new(false);
static SLOW_RAN: AtomicBool = AtomicBool::new(false);

/// Marks the slow hook as cut where it is dropped before its end.
struct Cut;

impl Drop for Cut {
    fn drop(&mut self) {
        if !SLOW_RAN.load(Ordering::SeqCst) {
            SLOW_CUT.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_hook_longer_than_the_cap_is_cut_there() {
    block_on(&Settings::NONE, async {
        cap_hook_deadlines(Duration::from_millis(200));
        on_shutdown("slow", Duration::from_secs(30), || async {
            let _cut = Cut;
            tokio::time::sleep(Duration::from_secs(30)).await;
            SLOW_RAN.store(true, Ordering::SeqCst);
        });
        on_shutdown("quick", Duration::from_secs(30), || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            QUICK_RAN.store(true, Ordering::SeqCst);
        });
    });
    assert!(SLOW_CUT.load(Ordering::SeqCst), "the slow hook was not cut");
    assert!(
        !SLOW_RAN.load(Ordering::SeqCst),
        "the slow hook ran to its end"
    );
    assert!(QUICK_RAN.load(Ordering::SeqCst));
}

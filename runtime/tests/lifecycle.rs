//! The lifecycle through the real entry point, in one process of its own (the state is
//! process-wide, so this file holds one test).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::lifecycle::{self, State, Trigger};
use coldstart_runtime::{
    Phase, after_first_request, block_on, first_request_done, on_shutdown, timeline,
};

#[test]
fn from_start_through_the_first_response_to_shutdown_hooks() {
    assert_eq!(lifecycle::state(), State::Starting);
    let fast_ran = Arc::new(AtomicBool::new(false));
    let slow_finished = Arc::new(AtomicBool::new(false));
    let (fast, slow) = (fast_ran.clone(), slow_finished.clone());
    let settings = Settings {
        strategy: Some(coldstart_bootstrap::Strategy::Minimal),
        ..Settings::NONE
    };

    let output = block_on(&settings, async move {
        assert_eq!(lifecycle::state(), State::Serving);
        let deferred = after_first_request(async { 7 });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !deferred.is_finished(),
            "deferred work waits for the first response"
        );
        assert_eq!(lifecycle::trigger(), None);

        assert!(first_request_done(), "the first call marks it");
        assert!(!first_request_done(), "later calls do not");
        assert_eq!(deferred.await.unwrap(), 7);
        assert_eq!(lifecycle::trigger(), Some(Trigger::Response));
        assert!(timeline().since_main(Phase::FirstResponse).is_some());

        // At the end of main: every hook runs, each within its own deadline.
        on_shutdown("slow", Duration::from_millis(50), move || async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            slow.store(true, Ordering::SeqCst);
        });
        on_shutdown("fast", Duration::from_secs(5), move || async move {
            fast.store(true, Ordering::SeqCst);
        });
        42
    });

    assert_eq!(output, 42);
    assert!(
        fast_ran.load(Ordering::SeqCst),
        "a hook within its deadline completes"
    );
    assert!(
        !slow_finished.load(Ordering::SeqCst),
        "a hook past its deadline is cut off"
    );
    assert_eq!(lifecycle::state(), State::Draining);
}

//! `panics::caught_said_once`: the panic hook hears of the first panic at a place and
//! of none after, while every other panic still reaches it. A process of its own: the
//! panic hook is the process's.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use coldstart_runtime::panics::{caught_said_once, panic_message};

static HEARD: AtomicUsize = AtomicUsize::new(0);

async fn panics(n: u32) {
    tokio::task::yield_now().await;
    panic!("bad answer {n}");
}

#[test]
fn the_hook_hears_of_the_first_panic_at_a_place_only() {
    std::panic::set_hook(Box::new(|_| {
        HEARD.fetch_add(1, Ordering::SeqCst);
    }));
    static EXPORT: AtomicBool = AtomicBool::new(false);
    static OTHER: AtomicBool = AtomicBool::new(false);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        for n in 0..5 {
            let panic = caught_said_once(&EXPORT, panics(n)).await.unwrap_err();
            // Each is still caught, with its own message.
            assert_eq!(panic_message(&*panic), format!("bad answer {n}"));
        }
        assert_eq!(HEARD.load(Ordering::SeqCst), 1);
        // A place of its own is heard of once too.
        let _ = caught_said_once(&OTHER, panics(9)).await;
        assert_eq!(HEARD.load(Ordering::SeqCst), 2);
        // What does not panic is untouched.
        assert_eq!(caught_said_once(&EXPORT, async { 7 }).await.unwrap(), 7);
    });
    // Any other panic, on a worker or here, reaches the hook as before.
    let task = runtime.spawn(async { panic!("elsewhere") });
    assert!(runtime.block_on(task).is_err());
    assert!(std::panic::catch_unwind(|| panic!("here")).is_err());
    assert_eq!(HEARD.load(Ordering::SeqCst), 4);
}

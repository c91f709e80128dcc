//! `off_runtime`'s threads are the runtime's kind of thread: they have the stack size
//! the plan gives the runtime's threads (deferred blocking inits ran on tokio's
//! blocking pool, which has it, and an init that needed `COLDSTART_THREAD_STACK_SIZE`
//! must still have it), and the end of `main` without a signal waits for them, as
//! dropping the runtime waits for its blocking pool. One process of its own: the
//! runtime starts once.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::task::{off_runtime, spawn};

/// The stack size of the calling thread.
fn stack_size() -> usize {
    // SAFETY: reading this thread's own attributes into valid storage, then freeing it.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
        let mut size = 0;
        assert_eq!(libc::pthread_attr_getstacksize(&attr, &mut size), 0);
        libc::pthread_attr_destroy(&mut attr);
        size
    }
}

#[test]
fn off_runtime_threads_have_the_plans_stack_and_the_end_of_main_waits_for_them() {
    let settings = Settings {
        strategy: Some(coldstart_bootstrap::Strategy::Minimal),
        thread_stack_size: Some(8 << 20),
        ..Settings::NONE
    };
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    coldstart_runtime::block_on(&settings, async move {
        let size = off_runtime("stack-size", stack_size).await;
        assert!(size >= 8 << 20, "a stack of {size} bytes");
        // Work whose caller is gone when `main` ends: it still runs to its end.
        let (started, running) = tokio::sync::oneshot::channel();
        let caller = spawn(off_runtime("late-work", move || {
            let _ = started.send(());
            std::thread::sleep(Duration::from_millis(300));
            done.store(true, Ordering::SeqCst);
        }));
        running.await.unwrap();
        caller.abort();
    });
    assert!(
        finished.load(Ordering::SeqCst),
        "the end of main did not wait for the work"
    );
}

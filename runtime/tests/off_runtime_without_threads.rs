//! `off_runtime` where no thread can be made: the work runs in the caller, at once, and
//! a panic in it goes on there. The refusal is the kernel's own: the process lowers its
//! `RLIMIT_NPROC` to 0 (first becoming `nobody` where it is root, whom the limit does
//! not bind), and every new thread is refused with `EAGAIN`, as where a task limit is
//! reached. A binary of its own without libtest's harness, which runs each test on a
//! thread of its own and whose process this changes for good.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use coldstart_runtime::task::off_runtime;

fn main() {
    // SAFETY: system calls on this process's own credentials and limits, made before
    // it has any other thread.
    unsafe {
        if libc::geteuid() == 0 {
            // Where it cannot (a user namespace that maps no uid 65534), it stays root:
            // bound by the limit if that root is not the real one, as in a rootless
            // container; the thread below tells.
            libc::setgroups(0, std::ptr::null());
            libc::setgid(65534);
            libc::setuid(65534);
        }
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NPROC, &none), 0);
    }
    if std::thread::Builder::new().spawn(|| ()).is_ok() {
        // The real root, which the limit does not bind, and which could not become
        // another user. The CI rule: skipped, and said, only outside CI.
        let why = "a thread can still be made here (the real root, unable to become uid 65534)";
        assert!(!coldstart_test_support::in_ci(), "{why}");
        coldstart_test_support::skipped("off_runtime_without_threads", why);
        return;
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let caller = std::thread::current().id();
    let ran_on = runtime.block_on(off_runtime("test-work", move || {
        std::thread::current().id()
    }));
    assert_eq!(ran_on, caller, "the work ran on another thread");

    // The panic is expected: not printed.
    std::panic::set_hook(Box::new(|_| {}));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(off_runtime("test-work", || -> u8 {
            panic!("the work's own, inline")
        }))
    }));
    drop(std::panic::take_hook());
    let panic = panicked.unwrap_err();
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"the work's own, inline")
    );
    println!("off_runtime without threads: the work ran in the caller, its panic too ... ok");
}

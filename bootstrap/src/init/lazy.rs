//! The value behind `#[coldstart::init] static NAME: T = expr;`: initialised at most
//! once, by the plan or by the first read, whichever comes first (on std's
//! `OnceLock`). An initialiser that panics leaves it uninitialised, and the next read
//! runs it again: it is not poisoned, as once_cell's `Lazy` is.
//!
//! A read costs one acquire load once the value exists, plus one relaxed load while
//! recording whether the first request read it. It must never block a reader longer
//! than the one initialisation takes.

use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Planned;

/// A value initialised once, on demand or when the init plan says.
///
/// ```
/// use coldstart_bootstrap::init::Lazy;
///
/// static GREETING: Lazy<String> = Lazy::new("example::GREETING", || "hello".repeat(2));
///
/// assert_eq!(*GREETING, "hellohello");
/// assert_eq!(GREETING.name(), "example::GREETING");
/// ```
pub struct Lazy<T> {
    name: &'static str,
    cell: OnceLock<T>,
    init: fn() -> T,
    read_early: AtomicBool,
    /// How long `init` took, plus one (0: not yet).
    nanos: AtomicU64,
}

impl<T> Lazy<T> {
    /// A value that `init` computes when it is first needed.
    pub const fn new(name: &'static str, init: fn() -> T) -> Self {
        Lazy {
            name,
            cell: OnceLock::new(),
            init,
            read_early: AtomicBool::new(false),
            nanos: AtomicU64::new(0),
        }
    }

    /// The registration's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value if it is initialised; does not initialise it and is not a read.
    pub fn get(&self) -> Option<&T> {
        self.cell.get()
    }

    /// The value, initialised first if need be; `timed` records how long that took
    /// (the plan's runner times its own runs).
    ///
    /// # Panics
    ///
    /// When read from inside its own initialisation (its initialiser, or one it
    /// reads, reads it again, on this thread or through another's): waiting for
    /// itself, it would hang for good, before the program serves and without a word.
    fn initialised(&self, timed: bool) -> &T {
        if let Some(value) = self.cell.get() {
            return value;
        }
        let waiting = Attempt::begin(std::ptr::from_ref(self).cast(), self.name);
        self.cell.get_or_init(|| {
            let _owned = waiting.own();
            let start = Instant::now();
            let value = (self.init)();
            if timed {
                let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
                self.nanos.store(nanos + 1, Ordering::Release);
            }
            value
        })
    }
}

/// What each thread is doing with statics being initialised, for all threads: an
/// initialiser it runs (`owns`), or one it waits for. A static read again inside its
/// own initialisation on one thread, or a cycle through two threads (A's initialiser,
/// on one, reads B; B's, on another, reads A), would wait on `OnceLock`s for good.
/// Touched only on the way to a first initialisation, never once a value exists.
static ATTEMPTS: std::sync::Mutex<Vec<Step>> = std::sync::Mutex::new(Vec::new());

/// One thread's step on one static.
struct Step {
    thread: std::thread::ThreadId,
    lazy: usize,
    name: &'static str,
    owns: bool,
}

fn attempts() -> std::sync::MutexGuard<'static, Vec<Step>> {
    ATTEMPTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// This thread's attempt at a static: a wait for it until its initialiser runs here
/// ([`Attempt::own`]); taken off when dropped.
struct Attempt {
    thread: std::thread::ThreadId,
    lazy: usize,
}

impl Attempt {
    /// Records that this thread waits for `lazy`, first following who runs its
    /// initialiser and what that thread waits for in turn.
    ///
    /// # Panics
    ///
    /// When that leads back to this thread: it would wait for itself, on this thread
    /// or through another, for good.
    fn begin(lazy: *const (), name: &'static str) -> Attempt {
        let thread = std::thread::current().id();
        let lazy = lazy as usize;
        let mut steps = attempts();
        let mut through = vec![name];
        let mut target = lazy;
        // Each step moves to another thread; more steps than entries is no chain.
        for _ in 0..=steps.len() {
            let Some(owner) = steps
                .iter()
                .rev()
                .find(|s| s.lazy == target && s.owns)
                .map(|s| s.thread)
            else {
                break;
            };
            if owner == thread && through.len() == 1 {
                drop(steps);
                panic!(
                    "`{name}` is read while it is being initialised: its initialiser, or one it reads, reads it again"
                );
            }
            if owner == thread {
                drop(steps);
                panic!(
                    "`{name}` is read while it is being initialised: its initialiser, on another thread, waits for a static this thread is initialising ({}): statics read each other",
                    through.join(" waits for ")
                );
            }
            // What the owner does now: its last step. Running an initialiser, it
            // waits for nothing.
            match steps.iter().rev().find(|s| s.thread == owner) {
                Some(last) if !last.owns => {
                    through.push(last.name);
                    target = last.lazy;
                }
                _ => break,
            }
        }
        steps.push(Step {
            thread,
            lazy,
            name,
            owns: false,
        });
        Attempt { thread, lazy }
    }

    /// Marks this thread as running the static's initialiser, until dropped.
    fn own(&self) -> Owned<'_> {
        let mut steps = attempts();
        if let Some(step) = steps
            .iter_mut()
            .rev()
            .find(|s| s.thread == self.thread && s.lazy == self.lazy)
        {
            step.owns = true;
        }
        Owned(self)
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let mut steps = attempts();
        if let Some(at) = steps
            .iter()
            .rposition(|s| s.thread == self.thread && s.lazy == self.lazy)
        {
            steps.remove(at);
        }
    }
}

/// The initialiser running on this thread; back to an attempt when dropped (a panic
/// in it included), which ends with the attempt.
struct Owned<'a>(&'a Attempt);

impl Drop for Owned<'_> {
    fn drop(&mut self) {
        let mut steps = attempts();
        if let Some(step) = steps
            .iter_mut()
            .rev()
            .find(|s| s.thread == self.0.thread && s.lazy == self.0.lazy)
        {
            step.owns = false;
        }
    }
}

impl<T> Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        if !self.read_early.load(Ordering::Relaxed) && super::before_first_response() {
            self.read_early.store(true, Ordering::Relaxed);
        }
        self.initialised(true)
    }
}

impl<T: Send + Sync> Planned for Lazy<T> {
    fn run(&self) {
        self.initialised(false);
    }

    fn needed(&self) -> bool {
        self.read_early.load(Ordering::Relaxed)
    }

    fn took(&self) -> Option<Duration> {
        match self.nanos.load(Ordering::Acquire) {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lazy")
            .field("name", &self.name)
            .field("value", &self.cell.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static SLOW: Lazy<usize> = Lazy::new("tests::SLOW", || {
        std::thread::sleep(Duration::from_millis(20));
        CALLS.fetch_add(1, Ordering::SeqCst) + 41
    });

    static ITSELF: Lazy<u8> = Lazy::new("tests::ITSELF", || *ITSELF + 1);
    static CYCLE_A: Lazy<u8> = Lazy::new("tests::CYCLE_A", || *CYCLE_B + 1);
    static CYCLE_B: Lazy<u8> = Lazy::new("tests::CYCLE_B", || *CYCLE_A + 1);

    /// A static read from inside its own initialisation, directly or through a cycle,
    /// panics naming it: it used to wait for itself for good.
    #[test]
    fn a_static_read_inside_its_own_initialisation_panics_naming_it() {
        for (read, name) in [
            ((|| *ITSELF) as fn() -> u8, "tests::ITSELF"),
            (|| *CYCLE_A, "tests::CYCLE_A"),
        ] {
            let (sent, received) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let outcome = std::panic::catch_unwind(read);
                let _ =
                    sent.send(outcome.map_err(|panic| {
                        panic.downcast_ref::<String>().cloned().unwrap_or_default()
                    }));
            });
            let outcome = received
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("reading {name} hung"));
            let message = outcome.expect_err("a read of itself cannot succeed");
            assert_eq!(
                message,
                format!(
                    "`{name}` is read while it is being initialised: its initialiser, or one it reads, reads it again"
                )
            );
        }
    }

    /// Both initialisers past this point before either reads the other, the first
    /// time only (a rerun after a panic goes straight on).
    static MET: std::sync::Barrier = std::sync::Barrier::new(2);
    static ARRIVED: AtomicUsize = AtomicUsize::new(0);
    fn meet() {
        if ARRIVED.fetch_add(1, Ordering::SeqCst) < 2 {
            MET.wait();
        }
    }
    static ACROSS_A: Lazy<u8> = Lazy::new("tests::ACROSS_A", || {
        meet();
        *ACROSS_B + 1
    });
    static ACROSS_B: Lazy<u8> = Lazy::new("tests::ACROSS_B", || {
        meet();
        *ACROSS_A + 1
    });

    /// Two statics that read each other, initialised on two threads at once: each
    /// initialiser waits for the other's `OnceLock`, and both threads hung for good
    /// without a word. The second to wait sees the cycle and panics naming it; its
    /// initialiser unwinds, the other thread runs it itself and meets its own read.
    #[test]
    fn statics_that_read_each_other_on_two_threads_panic_not_hang() {
        let (sent, received) = std::sync::mpsc::channel();
        for read in [(|| *ACROSS_A) as fn() -> u8, || *ACROSS_B] {
            let sent = sent.clone();
            std::thread::spawn(move || {
                let outcome = std::panic::catch_unwind(read);
                let _ =
                    sent.send(outcome.map_err(|panic| {
                        panic.downcast_ref::<String>().cloned().unwrap_or_default()
                    }));
            });
        }
        let mut said = Vec::new();
        for _ in 0..2 {
            let outcome = received
                .recv_timeout(Duration::from_secs(10))
                .expect("a thread hung on the cycle");
            said.push(outcome.expect_err("a read through the cycle cannot succeed"));
        }
        assert!(
            said.iter().any(|m| m.contains("on another thread")
                && (m.contains("(tests::ACROSS_A waits for tests::ACROSS_B)")
                    || m.contains("(tests::ACROSS_B waits for tests::ACROSS_A)"))),
            "{said:?}"
        );
        assert!(
            !attempts()
                .iter()
                .any(|s| s.name.starts_with("tests::ACROSS")),
            "every step was taken off"
        );
    }

    #[test]
    fn concurrent_first_reads_initialise_exactly_once() {
        let readers: Vec<_> = (0..8).map(|_| std::thread::spawn(|| *SLOW)).collect();
        let seen: Vec<usize> = readers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        assert!(seen.iter().all(|&v| v == 41), "{seen:?}");
        assert!(SLOW.needed());
        assert!(SLOW.took().unwrap() >= Duration::from_millis(20));
    }

    #[test]
    fn planned_initialisation_is_not_a_read() {
        static PLANNED: Lazy<u8> = Lazy::new("tests::PLANNED", || 7);
        assert!(PLANNED.get().is_none() && PLANNED.took().is_none());
        PLANNED.run();
        assert_eq!(PLANNED.get(), Some(&7));
        assert!(!PLANNED.needed());
        // The runner times planned runs itself.
        assert!(PLANNED.took().is_none());
        assert_eq!(*PLANNED, 7);
        assert!(PLANNED.needed());
    }
}

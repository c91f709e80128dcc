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
    /// When read from inside its own initialisation on this thread (its initialiser,
    /// or one it reads, reads it again): waiting for itself, it would hang for good,
    /// before the program serves and without a word.
    fn initialised(&self, timed: bool) -> &T {
        if let Some(value) = self.cell.get() {
            return value;
        }
        let _entered = Entered::enter(std::ptr::from_ref(self).cast(), self.name);
        self.cell.get_or_init(|| {
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

thread_local! {
    /// The statics this thread is initialising now, innermost last.
    static INITIALISING: std::cell::RefCell<Vec<*const ()>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// This thread's mark on a static it initialises, taken off when dropped (a panic
/// in the initialiser included).
struct Entered(*const ());

impl Entered {
    fn enter(lazy: *const (), name: &str) -> Entered {
        INITIALISING.with(|now| {
            let mut now = now.borrow_mut();
            if now.contains(&lazy) {
                drop(now);
                panic!(
                    "`{name}` is read while it is being initialised: its initialiser, or one it reads, reads it again"
                );
            }
            now.push(lazy);
        });
        Entered(lazy)
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        INITIALISING.with(|now| now.borrow_mut().retain(|l| *l != self.0));
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

/*!
The init registry: work that `#[coldstart::init]` registers at link time, and the
order it runs in.

Registrations are collected by the linker into one [`linkme`] distributed slice, so
nothing runs before `main` and an empty registry costs one length check. Each one has
a stable name (module path and item name, unless given) that profiles key on. Where a
registration runs is decided by [`Order`]: its declared phase if it has one; else, for a
static, the profile; else before serving (the safe default, and always so for a
function, which has no reads to profile).

This module never runs the work itself: running needs a runtime (for `async fn`) and
lives in `coldstart-runtime`. It must never panic on a profile or a name it is given.
*/

mod lazy;
mod order;
pub mod profile;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

pub use lazy::Lazy;
pub use order::{APART_FROM_MICROS, Order, Place};
pub use profile::{Profile, ProfileError};

#[doc(hidden)]
pub use linkme;

/// Every registration in the program, in link order (use [`registrations`] for a
/// deterministic order).
#[linkme::distributed_slice]
pub static INITS: [Registration];

/// Hooks told about a critical init that failed, with the failure itself, before the
/// program exits. They run after the hooks of
/// [`ON_START_FAILURE`](crate::failure::ON_START_FAILURE), which hear of every start-up
/// failure in one line (the Lambda integration reports to the Runtime API there).
#[linkme::distributed_slice]
pub static ON_INIT_FAILURE: [fn(&Failure)];

/// The phase a registration asked for with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// No phase given: a function runs before serving; for a static the profile
    /// decides, and without a profile it runs before serving.
    Auto,
    /// `critical`: always before the body of `main`.
    Critical,
    /// `deferred`: always after the first response.
    Deferred,
}

/// What a registration runs.
pub enum Work {
    /// `fn()` or `fn() -> Result<(), E>`.
    Fn(fn() -> Outcome),
    /// `async fn()` or `async fn() -> Result<(), E>`.
    Async(fn() -> Pin<Box<dyn Future<Output = Outcome> + Send>>),
    /// `static NAME: T = expr;`, initialised through its [`Lazy`].
    Static(&'static dyn Planned),
}

impl Work {
    /// `fn`, `async fn` or `static`, as profiles and reports write it.
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Fn(_) => "fn",
            Work::Async(_) => "async",
            Work::Static(_) => "static",
        }
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// What an init returned: `Err` carries the error's `Display` text.
pub type Outcome = Result<(), String>;

/// One `#[coldstart::init]` item.
#[derive(Debug)]
pub struct Registration {
    /// The stable name profiles key on.
    pub name: &'static str,
    /// The phase its arguments ask for.
    pub declared: Declared,
    /// `fatal`: a failure after the first response ends the program too.
    pub fatal: bool,
    /// What it runs.
    pub work: Work,
}

impl Registration {
    /// What `#[coldstart::init]` expands to.
    pub const fn new(name: &'static str, declared: Declared, fatal: bool, work: Work) -> Self {
        Registration {
            name,
            declared,
            fatal,
            work,
        }
    }
}

/// Every registration sorted by name: the order does not depend on the linker.
pub fn registrations() -> Vec<&'static Registration> {
    let mut all: Vec<&'static Registration> = INITS.iter().collect();
    order::sort_by_name(&mut all);
    all
}

/// An init that failed or panicked.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The registration's name.
    pub name: &'static str,
    /// The error's text, or the panic's message.
    pub error: String,
    /// Whether it panicked rather than returned an error.
    pub panicked: bool,
}

impl Failure {
    /// `panicked` or `failed`.
    pub fn how(&self) -> &'static str {
        if self.panicked { "panicked" } else { "failed" }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "init `{}` {}: {}", self.name, self.how(), self.error)
    }
}

/// How a static registration is initialised by the plan and reported on.
pub trait Planned: Sync {
    /// Initialises the value if nothing has yet, untimed (the runner times it); not
    /// a read.
    fn run(&self);
    /// Whether something read the value before the first response was done.
    fn needed(&self) -> bool;
    /// How long its initialisation took, if a read initialised it on demand.
    fn took(&self) -> Option<std::time::Duration>;
}

/// What `#[coldstart::init]` functions may return.
#[diagnostic::on_unimplemented(
    message = "#[coldstart::init] functions return `()` or `Result<(), E>` where `E: Display`",
    label = "returns `{Self}`"
)]
pub trait InitOutput {
    /// Into an [`Outcome`].
    fn into_outcome(self) -> Outcome;
}

impl InitOutput for () {
    fn into_outcome(self) -> Outcome {
        Ok(())
    }
}

impl<E: fmt::Display> InitOutput for Result<(), E> {
    fn into_outcome(self) -> Outcome {
        self.map_err(|e| e.to_string())
    }
}

/// True until the first response is done: reads of a [`Lazy`] until then mean the
/// first request needed it.
static BEFORE_FIRST_RESPONSE: AtomicBool = AtomicBool::new(true);

/// Reads from now on no longer count as needed by the first request. The runtime
/// calls this when the first response is done.
pub fn first_response_done() {
    BEFORE_FIRST_RESPONSE.store(false, Ordering::Relaxed);
}

fn before_first_response() -> bool {
    BEFORE_FIRST_RESPONSE.load(Ordering::Relaxed)
}

/// FxHash (rustc's): a few instructions per word. The names hashed are the program's
/// own, so there is nothing to defend against with SipHash.
#[derive(Default)]
pub(crate) struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in words.by_ref() {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.add(u64::from_le_bytes(w));
        }
        for &b in words.remainder() {
            self.add(u64::from(b));
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

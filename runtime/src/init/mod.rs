/*!
Runs the `#[coldstart::init]` registrations: the ones the order places before serving
run before the body of `main`, one after the other (slow statics, which the order sets
apart, each on a thread of its own beside them); the rest run after the first response,
off the request path (blocking work on a thread of its own). After that, a run
with `COLDSTART_PROFILE_OUT` writes the profile.

A program without registrations pays one slice-length check and one variable lookup
(`COLDSTART_PROFILE_OUT`).
A wrong or unreadable profile never stops a service: it is reported in one line and
the embedded profile's order, else the default order, is used. A critical init that
fails or panics stops start-up with one line naming it and exit code 70, before any
listener or exporter has started.
*/

mod before;
mod deferred;
mod write;

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use coldstart_bootstrap::init::{
    self, Failure, INITS, Order, Outcome, Place, Profile, Registration, Work,
};

use crate::lifecycle;

pub(crate) use before::run_before_serving;
pub use deferred::deferred_done;
use deferred::{DEFERRED_FINISHED, as_deferred_init, begin_deferred, end_of_turn};
pub(crate) use deferred::{end_deferred, finish_deferred};
use write::{profile_out, shown, write_profile};

/// Exit code when a critical init fails (`EX_SOFTWARE`).
pub const EXIT_INIT: i32 = 70;

/// `COLDSTART_PROFILE`: a profile to read at start-up, overriding an embedded one.
pub const PROFILE: &str = "COLDSTART_PROFILE";
/// `COLDSTART_PROFILE_OUT`: where to write the profile after the first response.
pub const PROFILE_OUT: &str = "COLDSTART_PROFILE_OUT";

/// How one registration went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Its stable name.
    pub name: &'static str,
    /// `fn`, `async` or `static`.
    pub kind: &'static str,
    /// When the order placed it.
    pub place: Place,
    /// How long it took, once it ran (for a static: its initialisation, whoever
    /// triggered it).
    pub took: Option<Duration>,
    /// Whether the first request needed it: for a static, whether something read it
    /// before the first response; for a function, whether it ran before serving.
    pub needed: bool,
    /// `None` until it has run; then its outcome (the error's or panic's text).
    pub outcome: Option<Outcome>,
}

/// One registration's record, kept at its registration's position in the order
/// rather than with its name. The failure is boxed and the time is whole
/// nanoseconds (while the run before serving is under way, the stopwatch's units): a
/// record is 16 bytes, so 1000 registrations write 16 KB of fresh memory on the
/// start-up path.
struct Ran {
    nanos: u64,
    outcome: Result<(), Box<Failure>>,
}

const _: () = assert!(std::mem::size_of::<Ran>() == 16);

impl Ran {
    /// The record of work that took `took` on the clock.
    fn timed(took: Duration, outcome: Result<(), Box<Failure>>) -> Ran {
        Ran {
            nanos: u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            outcome,
        }
    }
}

/// What has run: `before[i]` is the record of `order.before[i]`, and so for `after`;
/// a list shorter than its phase means the rest has not run yet.
struct Records {
    before: Vec<Ran>,
    after: Vec<Ran>,
}

static RAN: Mutex<Records> = Mutex::new(Records {
    before: Vec::new(),
    after: Vec::new(),
});
/// The order, and where it came from in words for the start-up report (no allocation
/// where it is the embedded profile or none).
static ORDER: OnceLock<(Order, Cow<'static, str>)> = OnceLock::new();

/// What has run so far; a panic elsewhere never hides it.
fn ran() -> MutexGuard<'static, Records> {
    RAN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every registration with what happened to it so far, in name order.
pub fn reports() -> Vec<InitReport> {
    let Some((order, _)) = ORDER.get() else {
        return Vec::new();
    };
    let ran = ran();
    let mut all: Vec<InitReport> = placed(&order.before, &ran.before, Place::BeforeServing)
        .chain(placed(&order.after, &ran.after, Place::AfterFirstResponse))
        .map(|(r, done, place)| {
            let ran_took = done.map(|d| Duration::from_nanos(d.nanos));
            let (took, needed) = match &r.work {
                // Initialised on demand by a read, or by the runner: whichever timed it.
                Work::Static(s) => (s.took().or(ran_took), s.needed()),
                _ => (ran_took, place == Place::BeforeServing),
            };
            InitReport {
                name: r.name,
                kind: r.work.kind(),
                place,
                took,
                needed,
                outcome: done.map(|d| {
                    d.outcome
                        .as_ref()
                        .map(|_| ())
                        .map_err(|f| format!("{}: {}", f.how(), f.error))
                }),
            }
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(b.name));
    all
}

/// A phase's registrations, each with its record once it has run.
fn placed<'a>(
    list: &'a [&'static Registration],
    records: &'a [Ran],
    place: Place,
) -> impl Iterator<Item = (&'static Registration, Option<&'a Ran>, Place)> {
    list.iter()
        .enumerate()
        .map(move |(i, &r)| (r, records.get(i), place))
}

/// Orders the registrations with the profile (`COLDSTART_PROFILE`, else the embedded
/// one) and keeps the order for [`reports`]. Returns whether there is anything to do
/// after the first response (deferred inits or a profile to write); when there is
/// not, [`deferred_done`] resolves at once.
pub(crate) fn prepare(embedded: Option<&'static str>) -> bool {
    let mut work_after = profile_out().is_some();
    if !INITS.is_empty() {
        // A profile read from a file borrows its names from the text, which lives
        // until the order is made.
        let text;
        let (profile, source) = match path_setting(PROFILE) {
            Some(path) => {
                let path = PathBuf::from(path);
                // Said, and the embedded order used, where it cannot be read.
                text = coldstart_bootstrap::init::profile::read_file(&path);
                from_file(&path, text.as_deref(), embedded)
            }
            None => from_embedded(embedded),
        };
        let order = Order::of(INITS.iter(), profile.as_ref());
        if let Some(mismatch) = &order.mismatch {
            coldstart_bootstrap::say!("coldstart: inits: {mismatch}");
        }
        work_after |= !order.after.is_empty();
        let _ = ORDER.set((order, source));
    }
    if !work_after {
        finish_deferred();
    }
    work_after
}

/// The profile read from `COLDSTART_PROFILE`, and where it came from in words for
/// the start-up report. A file that cannot be read or parsed is reported in one line
/// on stderr, and the embedded profile, if any, is used instead.
fn from_file<'a>(
    path: &std::path::Path,
    text: Result<&'a str, &std::io::Error>,
    embedded: Option<&'static str>,
) -> (Option<Profile<'a>>, Cow<'static, str>) {
    let parsed = text
        .map_err(|e| e.to_string())
        .and_then(|text| Profile::parse(text).map_err(|e| e.to_string()));
    match parsed {
        Ok(p) => (Some(p), format!("{PROFILE}={}", shown(path)).into()),
        Err(e) => {
            let (profile, source) = from_embedded(embedded);
            let instead = match profile {
                Some(_) => "the embedded profile",
                None => "the default init order",
            };
            coldstart_bootstrap::say!("coldstart: {PROFILE}={}: {e}; using {instead}", shown(path));
            (profile, format!("{source} ({PROFILE} unreadable)").into())
        }
    }
}

/// The profile embedded at compile time (`#[coldstart::main]` checked it then) or
/// given to the `Builder`, if any. One that does not parse is said in one line.
fn from_embedded(embedded: Option<&'static str>) -> (Option<Profile<'static>>, Cow<'static, str>) {
    match embedded.map(Profile::parse) {
        Some(Ok(p)) => (Some(p), "embedded".into()),
        Some(Err(e)) => {
            coldstart_bootstrap::say!(
                "coldstart: the embedded init profile: {e}; using the default init order"
            );
            (None, "none (the embedded one is unreadable)".into())
        }
        None => (None, "none".into()),
    }
}

/// The init order for the start-up report: where the profile came from, and each
/// phase's registrations in the order they run.
pub(crate) fn summary() -> Option<String> {
    let (order, source) = ORDER.get()?;
    let names = |list: &[&Registration]| match list {
        [] => "-".to_string(),
        _ => list.iter().map(|r| r.name).collect::<Vec<_>>().join(", "),
    };
    let before = match order.before.split_at(order.apart) {
        ([], all) => names(all),
        (apart, []) => format!("{} (apart, each on a thread of its own)", names(apart)),
        (apart, in_turn) => format!(
            "{} (apart, each on a thread of its own); {}",
            names(apart),
            names(in_turn)
        ),
    };
    Some(format!(
        "inits (profile: {source})\n  before serving       {before}\n  after 1st response   {}\n",
        names(&order.after)
    ))
}

/// Runs what the order places after the first response, then writes the profile if
/// asked. Call after the first response is done. Once the program is asked to stop
/// (a signal) or `main` has ended, no further init starts and no profile is written:
/// the end of the program says what was left undone.
pub(crate) async fn run_after_first_response() {
    if let Some((order, _)) = ORDER.get() {
        for r in &order.after {
            // Decided once: the turn's `in_thread` is where it runs.
            let thread = on_a_thread(r);
            if !begin_deferred(thread) {
                return;
            }
            let (outcome, took) = timed(r, thread).await;
            let finished = Ran::timed(took, outcome);
            // One on the runtime that ends after `main` did was to be cancelled with the
            // runtime, the exit code already chosen: its failure stops nothing (where
            // the end of `main` waits for an init on a thread, its outcome is taken).
            let late = !thread && deferred::main_ended();
            let stops = match &finished.outcome {
                Err(failure) if late => {
                    coldstart_bootstrap::say!(
                        "coldstart: deferred {failure}, after the end of main"
                    );
                    false
                }
                Err(failure) if r.fatal => {
                    coldstart_bootstrap::say!("coldstart: deferred {failure}; stopping (fatal)");
                    true
                }
                Err(failure) => {
                    coldstart_bootstrap::say!("coldstart: deferred {failure}; serving continues");
                    false
                }
                Ok(()) => false,
            };
            ran().after.push(finished);
            if stops {
                lifecycle::set_stop_code(EXIT_INIT);
            }
            end_of_turn();
            if stops {
                lifecycle::stop(EXIT_INIT).await;
                // Nothing more starts while the program stops, the profile of a run
                // that failed is not written, and `deferred_done` does not resolve: a
                // readiness check would turn ready as the program stops.
                return;
            }
        }
    }
    // The profile's write is a turn too: the end of `main` waits for it.
    let out = profile_out();
    if !begin_deferred(out.is_some()) {
        return;
    }
    if let Some(path) = out {
        let written = crate::task::off_runtime("coldstart-profile", move || {
            write_profile(&path).map(|()| path)
        })
        .await;
        match written {
            // Recorded at the fallback timer, the profile takes for `later` what a
            // request that came after it read: the next start would defer it, onto the
            // first request's path.
            Ok(path) if lifecycle::trigger() == Some(lifecycle::Trigger::Fallback) => {
                coldstart_bootstrap::say!(
                    "coldstart: {PROFILE_OUT}={} was written when the fallback timer fired, with no request answered: a static a request reads later is recorded as not needed (send the run a request sooner, or set COLDSTART_FIRST_RESPONSE_FALLBACK longer)",
                    shown(&path)
                );
            }
            Ok(_) => {}
            Err((path, e)) => coldstart_bootstrap::say!(
                "coldstart: cannot write {PROFILE_OUT}={}: {e}; set it to a file in a directory this process can write, or /dev/stdout",
                shown(&path)
            ),
        }
    }
    end_of_turn();
    finish_deferred();
}

/// The variable `name`, unless unset or blank (as every setting's blank value is).
fn path_setting(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|path| path.to_str().is_none_or(|p| !p.trim().is_empty()))
}

/// What the end of the program leaves undone of the work after the first response,
/// in one line, or `None` when it is all done (or there was none).
pub(crate) fn unfinished() -> Option<String> {
    if DEFERRED_FINISHED.load(Ordering::Acquire) {
        return None;
    }
    // Those that have not run, and the one running now, if any.
    let not_run = ORDER.get().map_or(0, |(order, _)| {
        order.after.len().saturating_sub(ran().after.len())
    });
    // With no first response (a body that returned, or failed, before serving) none
    // of it began: "did not finish" read as work cut short.
    let began = crate::lifecycle::trigger().is_some();
    let mut parts = Vec::new();
    if not_run > 0 {
        let how = if began {
            "did not finish"
        } else {
            "did not run"
        };
        parts.push(format!("{not_run} deferred init(s) {how}"));
    }
    if profile_out().is_some() {
        parts.push(format!("{PROFILE_OUT} was not written"));
    }
    let when = if began {
        "before the work after the first response finished"
    } else {
        "with no first response made, so the work after it never began"
    };
    (!parts.is_empty()).then(|| format!("the program ends {when}: {}", parts.join(", ")))
}

/// The profile of this run, as [`Profile::parse`] reads it.
pub fn profile() -> Profile<'static> {
    Profile::new(
        reports()
            .into_iter()
            .map(|r| init::profile::Entry {
                name: r.name,
                needed: r.needed,
                micros: r
                    .took
                    .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                kind: r.kind,
            })
            .collect(),
    )
}

/// Runs one registration on the calling task, catching a panic.
async fn run(r: &'static Registration) -> Result<(), Box<Failure>> {
    let outcome = match &r.work {
        Work::Async(f) => catching(f()).await,
        _ => run_blocking(r),
    };
    outcome.map_err(|(error, panicked)| failure(r, error, panicked))
}

/// [`run`] for an init in turn before serving, saying once if it waits for the first
/// response, which cannot come before it ends: otherwise start-up would hang unsaid.
async fn run_in_turn(r: &'static Registration) -> Result<(), Box<Failure>> {
    let mut work = std::pin::pin!(run(r));
    let mut said = false;
    std::future::poll_fn(|cx| {
        let (polled, waits) = lifecycle::polling_init_before_serving(|| work.as_mut().poll(cx));
        if waits && polled.is_pending() && !std::mem::replace(&mut said, true) {
            coldstart_bootstrap::say!(
                "coldstart: init `{}` waits for the first response, which cannot come before the inits before serving end: make it deferred, or spawn the wait (`after_first_request`)",
                r.name
            );
        }
        polled
    })
    .await
}

/// Whether a deferred registration runs on a thread of its own ([`timed`]): blocking
/// work does, but a static a request has already set, which has nothing left to run.
fn on_a_thread(r: &Registration) -> bool {
    match &r.work {
        Work::Async(_) => false,
        Work::Static(s) => s.took().is_none(),
        Work::Fn(_) => true,
    }
}

/// Runs one registration after the first response, catching a panic, with the time
/// the work took where it ran: blocking work goes to a thread of its own (`thread`,
/// as [`on_a_thread`] decided), named after the init, so it never holds up a worker
/// thread, and the thread's start, which the next profile would read as its own, is
/// not in the time. A static already set runs here: it only finds itself set, and a
/// thread would cost more than that.
///
/// Not tokio's blocking pool: `spawn_blocking` panics where no thread can be made (a
/// tight `pids.max` or `RLIMIT_NPROC`), which ended the deferred work, and
/// `deferred_done()` never came; `off_runtime` then runs it here.
async fn timed(
    r: &'static Registration,
    thread: bool,
) -> (Result<(), Box<Failure>>, std::time::Duration) {
    let blocking = move || {
        let start = Instant::now();
        let outcome = as_deferred_init(r.name, || run_blocking(r))
            .map_err(|(error, panicked)| failure(r, error, panicked));
        (outcome, start.elapsed())
    };
    match &r.work {
        Work::Async(_) => {
            let start = Instant::now();
            let mut work = std::pin::pin!(run(r));
            let outcome =
                std::future::poll_fn(|cx| as_deferred_init(r.name, || work.as_mut().poll(cx)))
                    .await;
            (outcome, start.elapsed())
        }
        _ if thread => crate::task::off_runtime(r.name, blocking).await,
        _ => blocking(),
    }
}

fn failure(r: &Registration, error: String, panicked: bool) -> Box<Failure> {
    Box::new(Failure {
        name: r.name,
        error,
        panicked,
    })
}

/// An init's error text, and whether it was a panic.
type Fault = (String, bool);

fn run_blocking(r: &Registration) -> Result<(), Fault> {
    let result = match &r.work {
        Work::Fn(f) => catch_unwind(f),
        Work::Static(s) => catch_unwind(AssertUnwindSafe(|| s.run())).map(Ok),
        // `run` awaits async work itself; nothing to do here.
        Work::Async(_) => Ok(Ok(())),
    };
    flatten(result)
}

/// Polls `work`, turning a panic into a failure instead of unwinding the runtime.
async fn catching(work: Pin<Box<dyn Future<Output = Outcome> + Send>>) -> Result<(), Fault> {
    flatten(crate::panics::caught(work).await)
}

fn flatten(result: Result<Outcome, Box<dyn Any + Send>>) -> Result<(), Fault> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err((error, false)),
        Err(payload) => Err((crate::panics::panic_message(payload.as_ref()), true)),
    }
}

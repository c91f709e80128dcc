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

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use coldstart_bootstrap::init::{
    self, Failure, INITS, ON_INIT_FAILURE, Order, Outcome, Place, Profile, Registration, Work,
};
use tokio::sync::Notify;

use crate::lifecycle;
use crate::stopwatch::Stopwatch;

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

static DEFERRED_DONE: Notify = Notify::const_new();
static DEFERRED_FINISHED: AtomicBool = AtomicBool::new(false);

/// Resolves when the work after the first response is finished: deferred inits have
/// run and the profile (if asked for) is written. A readiness check can wait on it.
/// In a `#[coldstart::test]`, where no init runs, it resolves at once. After a signal,
/// or a `fatal` deferred init's failure, the deferred inits not yet started do not run,
/// and it never resolves: do not await it in a shutdown hook.
pub async fn deferred_done() {
    // Awaited by an init before serving, it waits for ever too: said as for
    // `first_response`.
    lifecycle::waits_for_first_response();
    waits_in_deferred_init();
    lifecycle::wait_until(&DEFERRED_DONE, || DEFERRED_FINISHED.load(Ordering::Acquire)).await;
}

thread_local! {
    /// While a deferred init runs (each poll of an async one, the whole of one on its
    /// thread), its name.
    static IN_DEFERRED_INIT: std::cell::Cell<Option<&'static str>> =
        const { std::cell::Cell::new(None) };
}

/// Runs `work` as the deferred init `name`, for [`waits_in_deferred_init`].
fn as_deferred_init<T>(name: &'static str, work: impl FnOnce() -> T) -> T {
    let outer = IN_DEFERRED_INIT.replace(Some(name));
    let done = work();
    IN_DEFERRED_INIT.set(outer);
    done
}

/// Says, once, that a deferred init waits for [`deferred_done`]: that comes only after
/// the deferred inits, this one among them, have ended, so the wait has no end; the
/// inits after it never start, and one on a thread of its own holds the end of `main`.
fn waits_in_deferred_init() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if let Some(name) = IN_DEFERRED_INIT.get()
        && !SAID.swap(true, Ordering::Relaxed)
    {
        coldstart_bootstrap::say!(
            "coldstart: deferred init `{name}` waits for deferred_done(), which comes only after the deferred inits, this one among them, have ended: spawn the wait (tokio::spawn) instead"
        );
    }
}

/// Says the work after the first response is finished: [`deferred_done`] resolves.
pub(crate) fn finish_deferred() {
    DEFERRED_FINISHED.store(true, Ordering::Release);
    DEFERRED_DONE.notify_waiters();
}

/// Where the deferred inits are, as the end of `main` sees them. One lock for both, so
/// that an init either starts before the end of `main` (which then waits for it, when
/// it runs on a thread) or not at all.
struct Turn {
    /// `main` has ended and its hooks have run: no deferred init starts after.
    main_ended: bool,
    /// A deferred init runs on a thread of its own, until its outcome is taken.
    in_thread: bool,
}

static TURN: Mutex<Turn> = Mutex::new(Turn {
    main_ended: false,
    in_thread: false,
});
static TURN_OVER: Notify = Notify::const_new();

fn turn() -> MutexGuard<'static, Turn> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The end of `main`, once its hooks have run: no further deferred init starts, and
/// the one running on a thread of its own (as `#[tokio::main]` waits for its blocking
/// pool) is waited for, its outcome taken (a fatal one's exit code), while the runtime
/// still runs. That thread is inside the runtime and may wait on it (a timer, a task
/// it spawned), which nothing would drive once `block_on` has returned on
/// `current_thread`. One that runs on the runtime is cancelled with it, as a task is.
pub(crate) async fn end_deferred() {
    turn().main_ended = true;
    lifecycle::wait_until(&TURN_OVER, || !turn().in_thread).await;
}

/// Whether the next deferred init may start (it does, `in_thread` or not): not after
/// a signal or the end of `main`.
fn begin_deferred(in_thread: bool) -> bool {
    let mut turn = turn();
    if lifecycle::stop_asked() || turn.main_ended {
        return false;
    }
    turn.in_thread = in_thread;
    true
}

/// The deferred init that ran is over, its outcome taken.
fn end_of_turn() {
    turn().in_thread = false;
    TURN_OVER.notify_waiters();
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

/// Set when a static running apart fails: what runs in turn stops at its next step,
/// as it would have had they run one after the other.
static APART_FAILED: AtomicBool = AtomicBool::new(false);

/// Runs what the order places before serving: the statics it sets apart each on a
/// thread of its own, the rest in order on this thread meanwhile, then waits for all. On
/// a failure, tells the failure hooks and ends the program with [`EXIT_INIT`] once
/// what runs apart has finished (it cannot be stopped; had they run one after the
/// other, the failure would have come after it too), naming the first failure in the
/// order; unless a signal a hook takes came meanwhile: then the failure is said and
/// the program stops as the signal asked (its hooks, exit 0), the failure hooks not
/// called.
pub(crate) async fn run_before_serving() {
    let Some((order, _)) = ORDER.get() else {
        return;
    };
    let (apart, in_turn) = order.before.split_at(order.apart);
    // Started first: they are the longest, and their threads run them while this
    // thread gets on with the rest. Each is timed on its own thread. Threads of
    // coldstart's own, not tokio's blocking pool, whose spawn panics where no thread
    // can be made (the process ended with 101); each then runs here, at once.
    let started: Vec<_> = apart
        .iter()
        .map(|&r| {
            crate::task::begin(r.name, move || {
                let start = Instant::now();
                let outcome = run_blocking(r);
                if outcome.is_err() {
                    APART_FAILED.store(true, Ordering::Relaxed);
                }
                (outcome, start.elapsed())
            })
        })
        .collect();
    // Recorded together at the end: one lock, not one per registration. Those that
    // ran apart go in front once they finish.
    let mut done = Vec::with_capacity(order.before.len());
    // Timed by a stopwatch: for many registrations a counter read each, not a clock
    // read (see `stopwatch`). Each one's end is the next one's start, and the records
    // hold the stopwatch's units until it stops.
    let mut watch = Stopwatch::start(in_turn.len());
    for r in in_turn {
        // After a signal (a hook registered by an earlier init, or by the telemetry,
        // took it) the program stops: the rest would only hold its hooks back.
        if APART_FAILED.load(Ordering::Relaxed) || lifecycle::signal_came() {
            break;
        }
        // An async init that waits (a database that does not answer) is left where
        // it waits when a signal comes: it would hold the hooks back for as long.
        // Not recorded: the records are what ran to its end.
        let outcome = tokio::select! {
            biased;
            outcome = run_in_turn(r) => outcome,
            _ = lifecycle::shutdown_signal() => break,
        };
        let failed = outcome.is_err();
        done.push(Ran {
            nanos: watch.lap(),
            outcome,
        });
        if failed {
            break;
        }
    }
    let scale = watch.stop();
    for ran in &mut done {
        ran.nanos = scale.nanos(ran.nanos);
    }
    // What runs apart cannot be stopped: a failure waits for it to finish. After a
    // signal nothing waits for its outcome (no body runs, no profile is written), so
    // one still running is left to its thread, as an async init is left where it
    // waits, and the records end before it.
    let mut ran_apart = Vec::with_capacity(started.len());
    let mut every_apart = true;
    for (begun, r) in started.into_iter().zip(apart) {
        let (outcome, took) = tokio::select! {
            biased;
            finished = begun.finish() => finished,
            _ = lifecycle::shutdown_signal() => {
                every_apart = false;
                break;
            }
        };
        ran_apart.push(Ran::timed(
            took,
            outcome.map_err(|(error, panicked)| failure(r, error, panicked)),
        ));
    }
    // All that ran apart, then what ran in turn up to a failure: a prefix of the
    // order, as the records must be (without what ran in turn where one apart was
    // left running).
    let recorded = if every_apart {
        ran_apart.len() + done.len()
    } else {
        ran_apart.len()
    };
    if !ran_apart.is_empty() {
        done.splice(0..0, ran_apart);
    }
    let mut failures = done
        .iter()
        .filter_map(|ran| ran.outcome.as_ref().err().cloned());
    let failure = failures.next();
    // The first stops start-up and goes to the hooks; any other is said too, or an
    // in-turn init's `Err`, which no panic hook prints, would never be seen.
    let others: Vec<_> = failures.collect();
    done.truncate(recorded);
    record(done);
    // A signal the handler counted, whose listener task has not run yet (on
    // `current_thread`, an init held the one thread): waited for, so that what comes
    // next (no body) follows it.
    if lifecycle::signal_came() && !lifecycle::stop_asked() {
        let _ = tokio::time::timeout(Duration::from_secs(2), lifecycle::shutdown_signal()).await;
    }
    if let Some(failure) = failure {
        if lifecycle::signal_came() {
            // A signal came while the inits ran: the program stops as it asked (the
            // hooks run, exit 0), and the failure is said.
            for failure in std::iter::once(&failure).chain(&others) {
                coldstart_bootstrap::say!("coldstart: {failure}, while stopping at a signal");
            }
            return;
        }
        for other in &others {
            coldstart_bootstrap::say!("coldstart: {other}, at the same start-up");
        }
        fail_start_up(&failure);
    }
}

/// Adds what ran before serving to the records; moved, not copied, when they are
/// empty (as they are on the start-up path).
fn record(mut done: Vec<Ran>) {
    let before = &mut ran().before;
    if before.is_empty() {
        *before = done;
    } else {
        before.append(&mut done);
    }
}

fn fail_start_up(failure: &Failure) -> ! {
    let message = format!("{failure}; start-up stopped");
    coldstart_bootstrap::say!("coldstart: {message}");
    coldstart_bootstrap::failure::report(coldstart_bootstrap::failure::Cause::Init, &message);
    for hook in ON_INIT_FAILURE {
        if catch_unwind(|| hook(failure)).is_err() {
            coldstart_bootstrap::say!("coldstart: an init-failure hook panicked");
        }
    }
    std::process::exit(EXIT_INIT)
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
            let stops = match &finished.outcome {
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

/// Where to write the profile: `COLDSTART_PROFILE_OUT`, unless unset or blank (as
/// every setting's blank value is). A relative path is taken from the directory the
/// program started in, as read at start-up: the body may change directory before the
/// profile is written.
fn profile_out() -> Option<PathBuf> {
    static OUT: OnceLock<Option<PathBuf>> = OnceLock::new();
    OUT.get_or_init(|| {
        let path = PathBuf::from(path_setting(PROFILE_OUT)?);
        Some(std::path::absolute(&path).unwrap_or(path))
    })
    .clone()
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

/// Clears `O_NONBLOCK` on `file`, opened with it so that the open does not wait: the
/// write then goes whole to a reader slower than the pipe's buffer.
fn blocking(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(2) reading and setting the status flags of a descriptor `file`
    // owns, open for the call's length.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Writes beside the target and renames, so a reader never sees half a profile. The
/// file beside it is this write's own (process id, the nanoseconds of the time and a
/// count, created new): two processes writing one path (replicas on a shared volume,
/// which in containers often have the same process id) each rename a whole file. A
/// link is followed (one to a file not there yet too), so the file it names is
/// written, not the link replaced. Where no file can be made beside the target (a
/// read-only directory) or a rename cannot replace it (a file bind-mounted into a
/// container: `EBUSY`), the target is written in place. So is a character device or a
/// FIFO, whose open does not wait for a reader (none is an error). A folder, a block
/// device or a socket is refused.
fn write_profile(path: &std::path::Path) -> Result<(), (PathBuf, std::io::Error)> {
    use std::io::Write as _;
    static WRITES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let text = profile().to_string();
    // A descriptor (`/dev/stdout` with stdout sent to a file, as a shell's `> run.log`
    // does): followed as a link, it names that file, which a rename would replace,
    // losing what was written to it and all that comes after. One of this process's
    // is written through, where its next writes go on after the profile; another's
    // is appended to, as `>>` would. So is one a link leads to (`ln -s /dev/stdout
    // /app/profile`, as images link their log files to stdout).
    match linked_descriptor(path) {
        Some(Descriptor::Own(fd)) => {
            // What std holds of stdout goes first, so the profile follows it.
            if fd == 1 {
                let _ = std::io::stdout().flush();
            }
            // SAFETY: only duplicated (`dup` fails on a descriptor that is not open),
            // never closed here.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            return borrowed
                .try_clone_to_owned()
                .and_then(|owned| std::fs::File::from(owned).write_all(text.as_bytes()))
                .map_err(|e| (path.to_path_buf(), e));
        }
        Some(Descriptor::Another) => {
            return write_in_place(path, std::fs::File::options().append(true), &text)
                .map_err(|e| (path.to_path_buf(), e));
        }
        None => {}
    }
    let target = std::fs::canonicalize(path)
        .or_else(|_| {
            let linked = std::fs::read_link(path)?;
            Ok::<_, std::io::Error>(path.parent().map_or(linked.clone(), |dir| dir.join(linked)))
        })
        .unwrap_or_else(|_| path.to_path_buf());
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(&target).map(|meta| meta.file_type()) {
        // A character device (`/dev/null`, a terminal) or a FIFO: written in place,
        // not renamed over, which would make the device a file. A FIFO with no reader
        // is an error at once (the open does not wait); a reader is then waited for
        // as any writer would wait.
        Ok(kind) if kind.is_char_device() || kind.is_fifo() => {
            return write_in_place(&target, std::fs::File::options().write(true), &text)
                .map_err(|e| (path.to_path_buf(), e));
        }
        Ok(kind) if !kind.is_file() => {
            let what = format!("is {}", coldstart_bootstrap::file::what_it_is(kind));
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
            return Err((path.to_path_buf(), e));
        }
        _ => {}
    }
    let mut tmp = target.as_os_str().to_owned();
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    tmp.push(format!(".{}.{nanos}.{n}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let beside = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&tmp);
    if let Err(e) = &beside
        && matches!(
            e.kind(),
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
        )
    {
        return std::fs::write(&target, text.as_bytes()).map_err(|e| (path.to_path_buf(), e));
    }
    let written = beside.and_then(|mut file| {
        // A profile replaced keeps its permissions: the new file would have the
        // umask's (a 0600 profile came back 0644). Its owner stays this process's.
        if let Ok(kept) = std::fs::metadata(&target) {
            file.set_permissions(kept.permissions())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| match std::fs::rename(&tmp, &target) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let _ = std::fs::remove_file(&tmp);
            std::fs::write(&target, text.as_bytes())
        }
        other => other,
    });
    renamed.map_err(|e| {
        // Half a profile beside the target helps nobody; one of the same name that
        // this write did not create is another's, left alone.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(&tmp);
        }
        (path.to_path_buf(), e)
    })
}

/// Writes `text` to what `at` names, opened with `options` without waiting (a FIFO
/// with no reader is an error at once, not a wait), then written as any writer would,
/// waiting for the reader.
fn write_in_place(
    at: &std::path::Path,
    options: &mut std::fs::OpenOptions,
    text: &str,
) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = options.custom_flags(libc::O_NONBLOCK).open(at)?;
    blocking(&file)?;
    file.write_all(text.as_bytes())
}

/// A path as a line shows it: line breaks and controls escaped, so one line stays one.
fn shown(path: &std::path::Path) -> String {
    coldstart_bootstrap::plan::settings::OneLine(&path.to_string_lossy()).to_string()
}

/// A descriptor a path names.
#[derive(Debug, PartialEq, Eq)]
enum Descriptor {
    /// One of this process's: `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`,
    /// `/proc/self/fd/N`, `/proc/thread-self/fd/N`, `/proc/<this pid>/fd/N`.
    Own(std::os::fd::RawFd),
    /// Another process's: `/proc/<pid>/fd/N`.
    Another,
}

/// The descriptor `path` names, itself or through the links it leads through, one at
/// a time (at most 40, the kernel's own bound): `/app/profile` linked to `/dev/stdout`
/// names standard output, which, followed to its end by `canonicalize`, is the file
/// stdout was sent to, renamed over.
fn linked_descriptor(path: &std::path::Path) -> Option<Descriptor> {
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        // Its folder resolved too: a relative link (`../proc/self/fd/1`) or a folder
        // linked to `/proc/self/fd` names a descriptor by another spelling, and the
        // next link read is the descriptor's own, to the file it writes.
        let resolved = || {
            let folder = std::fs::canonicalize(at.parent()?).ok()?;
            descriptor(&folder.join(at.file_name()?))
        };
        if let Some(named) = descriptor(&at).or_else(resolved) {
            return Some(named);
        }
        let next = std::fs::read_link(&at).ok()?;
        at = match at.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    None
}

/// The descriptor `path` names, if it names one.
fn descriptor(path: &std::path::Path) -> Option<Descriptor> {
    // `dev/fd/3` from the working directory is a file of that name.
    if !path.is_absolute() {
        return None;
    }
    let steps: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(step) => step.to_str(),
            _ => None,
        })
        .collect();
    // Digits alone, as the kernel names them: `-1` made std's `borrow_raw` panic on
    // the profile's thread, and the end of `main` waited for it for good.
    let own = |fd: &str| {
        fd.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| fd.parse().ok())
            .flatten()
            .map(Descriptor::Own)
    };
    match steps.as_slice() {
        ["dev", "stdout"] => Some(Descriptor::Own(1)),
        ["dev", "stderr"] => Some(Descriptor::Own(2)),
        ["dev", "fd", fd] => own(fd),
        ["proc", "self" | "thread-self", "fd", fd] => own(fd),
        ["proc", pid, "fd", fd] if pid.parse() == Ok(std::process::id()) => own(fd),
        ["proc", _, "fd", _] => Some(Descriptor::Another),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile written over one keeps its permissions.
    #[test]
    fn a_rewritten_profile_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = coldstart_test_support::temp_dir("profile-mode");
        let path = dir.join("init.profile");
        for mode in [0o600, 0o640] {
            std::fs::write(&path, "old").unwrap_or_else(|e| panic!("{e}"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("{e}"));
            write_profile(&path).unwrap_or_else(|(_, e)| panic!("{e}"));
            let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(meta.permissions().mode() & 0o777, mode);
            assert_eq!(
                std::fs::read_to_string(&path).unwrap_or_default(),
                profile().to_string()
            );
        }
    }

    /// Two writers of one path (two threads here, as two processes would be) never
    /// clash on the file beside it: every write succeeds and every read finds a
    /// whole profile. With one fixed name beside the target, a rename found it gone
    /// or half written.
    #[test]
    fn writers_of_one_profile_path_each_rename_a_whole_file() {
        let dir = coldstart_test_support::temp_dir("profile-writers");
        let path = dir.join("init.profile");
        let whole = profile().to_string();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    (0..200)
                        .filter_map(|_| write_profile(&path).err())
                        .map(|(_, e)| e.to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut reads = 0;
        while !writers.iter().all(std::thread::JoinHandle::is_finished) {
            if let Ok(text) = std::fs::read_to_string(&path) {
                assert_eq!(text, whole);
                reads += 1;
            }
        }
        for writer in writers {
            let failed = writer
                .join()
                .unwrap_or_else(|_| panic!("a writer panicked"));
            assert!(failed.is_empty(), "{failed:?}");
        }
        // At least one read checked, whatever the timing.
        let last = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(last, whole);
        reads += 1;
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            ["init.profile"],
            "nothing left beside it ({reads} reads)"
        );
    }

    /// A profile path that is a FIFO (or a device) is written in place, without
    /// waiting for a reader, and stays what it is: renamed over, a FIFO (or
    /// `/dev/null`, as root) became a regular file holding the profile. A folder or a
    /// socket is refused.
    #[test]
    fn a_profile_path_that_is_no_regular_file_is_written_in_place_or_refused() {
        use std::os::unix::fs::FileTypeExt;
        let dir = coldstart_test_support::temp_dir("profile-fifo");
        let fifo = dir.join("init.profile");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: mkfifo(3) with a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // No reader: an error at once, not a wait.
        let (_, e) = write_profile(&fifo).expect_err("a FIFO with no reader");
        assert_eq!(e.raw_os_error(), Some(libc::ENXIO), "{e}");
        // With a reader: the profile, through the FIFO.
        let reading = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo))
        };
        // Until the reader has opened it, the write finds none.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while write_profile(&fifo).is_err() {
            assert!(Instant::now() < deadline, "never written to the reader");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let read = reading
            .join()
            .unwrap_or_else(|_| panic!("the reader panicked"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read, profile().to_string());
        let kind = std::fs::metadata(&fifo)
            .unwrap_or_else(|e| panic!("{e}"))
            .file_type();
        assert!(kind.is_fifo(), "still a FIFO");
        let (_, e) = write_profile(&dir).expect_err("a directory is refused");
        assert_eq!(e.to_string(), "is a directory");
        let socket = dir.join("socket");
        let _listener =
            std::os::unix::net::UnixListener::bind(&socket).unwrap_or_else(|e| panic!("{e}"));
        let (_, e) = write_profile(&socket).expect_err("a socket is refused");
        assert_eq!(e.to_string(), "is a socket");
        let left = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .count();
        assert_eq!(left, 2, "nothing made beside them");
    }

    /// `/dev/stdout` with stdout sent to a file (`> run.log`), here `/dev/fd/N` of a
    /// file this test holds: written through the descriptor, the file kept, and what
    /// the program writes next goes after the profile. Followed as a link, it was
    /// renamed over, and the log lost with all that was written to it after.
    #[test]
    fn a_profile_path_naming_a_descriptor_is_written_through_it() {
        use std::io::Write as _;
        use std::os::fd::AsRawFd as _;
        use std::os::unix::fs::MetadataExt as _;
        let log = coldstart_test_support::temp_file("run.log");
        let mut held = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        held.write_all(b"a log line\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let inode = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.ino()).ok();
        let before = inode(&log);
        let fd = std::path::PathBuf::from(format!("/dev/fd/{}", held.as_raw_fd()));
        write_profile(&fd).unwrap_or_else(|(_, e)| panic!("{e}"));
        held.write_all(b"after\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            inode(&log),
            before,
            "the same file, not one renamed over it"
        );
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, format!("a log line\n{}after\n", profile()));
        // A link to it, and a relative link to that link: the same descriptor.
        let dir = coldstart_test_support::temp_dir("profile-linked-descriptor");
        std::os::unix::fs::symlink(&fd, dir.join("profile")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("profile", dir.join("again")).unwrap_or_else(|e| panic!("{e}"));
        // A folder linked to `/proc/self/fd`, and a relative link through `..` into
        // it: the descriptor by other spellings.
        std::os::unix::fs::symlink("/proc/self/fd", dir.join("fds"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.join("sub")).unwrap_or_else(|e| panic!("{e}"));
        let number = held.as_raw_fd();
        std::os::unix::fs::symlink(format!("../fds/{number}"), dir.join("sub/up"))
            .unwrap_or_else(|e| panic!("{e}"));
        let through = [format!("fds/{number}"), "sub/up".to_owned()];
        for link in ["profile", "again"]
            .into_iter()
            .chain(through.iter().map(String::as_str))
        {
            write_profile(&dir.join(link)).unwrap_or_else(|(_, e)| panic!("{e}"));
        }
        assert_eq!(inode(&log), before, "not renamed over through a link");
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text,
            format!("a log line\n{0}after\n{0}{0}{0}{0}", profile()),
            "written through the links"
        );
        assert_eq!(
            linked_descriptor(&dir.join("again")),
            Some(Descriptor::Own(held.as_raw_fd()))
        );
        // `/var/../dev/stdout` is read as steps, `var`, `dev`, `stdout`: not a
        // descriptor by name, but `/dev/stdout` is itself a link, to `/proc/self/fd/1`.
        if std::fs::read_link("/dev/stdout").is_ok() {
            assert_eq!(
                linked_descriptor("/var/../dev/stdout".as_ref()),
                Some(Descriptor::Own(1))
            );
        }
        let me = format!("/proc/{}/fd/7", std::process::id());
        for (path, named) in [
            ("/dev/stdout", Some(Descriptor::Own(1))),
            ("/dev/stderr", Some(Descriptor::Own(2))),
            ("/proc/self/fd/9", Some(Descriptor::Own(9))),
            (me.as_str(), Some(Descriptor::Own(7))),
            ("/proc/1/fd/2", Some(Descriptor::Another)),
            ("/dev/null", None),
            ("/dev/fd/x", None),
            ("/dev/fd/-1", None),
            ("/proc/self/fd/-1", None),
            ("/dev/fd/+3", None),
            ("/dev/fd/99999999999", None),
            ("/var/lib/app/init.profile", None),
            ("dev/fd/3", None),
            ("./proc/self/fd/5", None),
        ] {
            assert_eq!(descriptor(path.as_ref()), named, "{path}");
        }
    }
}

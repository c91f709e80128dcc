//! From `main` to a running runtime: probe, plan, allocator options, build, and the
//! optional start-up report. The only code on the path from exec to the first
//! response that coldstart adds; each step is marked on the timeline.

use std::fmt;
use std::future::Future;

use coldstart_bootstrap::failure::{self, Cause};
use coldstart_bootstrap::plan::{DEFAULT_DRAIN_TIMEOUT, Report, settings};
use coldstart_bootstrap::{Env, Flavor, Plan, PlanError, Probe, Settings, Source};
use tokio::runtime::{Builder, Runtime};

use crate::timeline::{self, Phase};
use crate::{init, lifecycle};

/// Exit code for a configuration error (`EX_CONFIG` from sysexits.h).
pub const EXIT_CONFIG: i32 = 78;
/// Exit code when the runtime cannot be built (`EX_OSERR`).
pub const EXIT_OS: i32 = 71;
/// Exit code for a second start in one process (`EX_SOFTWARE`, as a failed critical
/// init's).
const EXIT_AGAIN: i32 = 70;

/// Why start-up failed.
#[derive(Debug)]
pub enum StartError {
    /// A setting has a bad value or settings contradict each other.
    Config(PlanError),
    /// tokio could not build the runtime (for example, threads could not be spawned).
    Runtime(std::io::Error),
    /// A runtime was started already in this process.
    Again,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Runtime(e) => write!(f, "cannot build the tokio runtime: {e}"),
            StartError::Again => f.write_str(
                "the runtime was started once already in this process: the plan, signals and telemetry are the process's, so `#[coldstart::main]`, `Builder::block_on` and `block_on` run once per process (tests: `#[coldstart::test]`)",
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// A runtime built from the plan.
#[derive(Debug)]
pub struct Started {
    /// The runtime.
    pub runtime: Runtime,
    /// Whether `COLDSTART_LOG=debug` asked for the start-up report.
    pub report: bool,
    /// Whether anything waits for the first response: deferred inits, or a profile to
    /// write.
    pub work_after: bool,
}

/// Adds the configuration file the environment points at (`coldstart.toml`,
/// `config/<env>.toml` or `COLDSTART_CONFIG`) to `env`.
///
/// # Exits
///
/// With a one-line message naming the file and line, and exit code 78, when the file
/// cannot be read or is not valid.
pub fn load_env(env: Env) -> Env {
    timeline::mark(Phase::Main);
    match env.with_file_from_env() {
        Ok(env) => env,
        Err(e) => exit(&StartError::Config(PlanError::File(e))),
    }
}

/// Probes, plans, orders the `#[coldstart::init]` registrations and builds the runtime
/// for `settings` (the attribute's arguments) and `env` (the file, code and
/// environment layers). The order (and the profile it reads) is made before the
/// runtime's threads exist: made after, its first-touch page faults competed with
/// their creation on a small machine (BENCHMARKS.md, "Registry overhead").
///
/// # Errors
///
/// [`StartError::Config`] for a bad setting or contradicting settings (nothing is
/// set then but the timeline's `main` mark, which the next call keeps: a call with
/// other settings may follow and marks its own steps; one made while this call runs
/// gets [`StartError::Again`]), [`StartError::Runtime`] when
/// tokio cannot build the runtime, [`StartError::Again`] on a call after one that
/// built a runtime or failed to (its plan, signal listener, shutdown hooks and
/// telemetry are the first run's, and would be lost or misapplied).
///
/// # Exits
///
/// With one line and exit code 71 when tokio panics while building the runtime (the
/// OS refused a worker thread): unwinding from there can hang (see `build_or_exit`).
pub fn start(settings: &Settings, env: &Env) -> Result<Started, StartError> {
    static BEGUN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if BEGUN.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return Err(StartError::Again);
    }
    timeline::mark(Phase::Main);
    timeline::mark(Phase::Configured);
    let budget = Probe::new().run();
    timeline::mark(Phase::Probed);
    // A bad setting leaves nothing of the process's set (`main`'s mark aside, which
    // the program did enter then): the caller may try again with others.
    let refused = |e| {
        timeline::unmark(Phase::Configured);
        timeline::unmark(Phase::Probed);
        BEGUN.store(false, std::sync::atomic::Ordering::Release);
        StartError::Config(e)
    };
    let plan = Plan::from_budget(&budget, settings, env).map_err(refused)?;
    let report = settings::debug_log(env).map_err(refused)?;
    timeline::mark(Phase::Planned);
    crate::alloc::apply(&plan.allocator.value);
    let work_after = init::prepare(settings.init_profile);
    timeline::mark(Phase::Ordered);
    let runtime = build_or_exit(&plan, settings.name).map_err(StartError::Runtime)?;
    timeline::mark(Phase::RuntimeBuilt);
    let _ = crate::STARTED.set((budget, plan));
    Ok(Started {
        runtime,
        report,
        work_after,
    })
}

/// Builds the tokio runtime a plan describes, named `name` where given, with all of
/// tokio's compiled-in drivers enabled (as `#[tokio::main]` does).
///
/// # Errors
///
/// When tokio cannot build it.
///
/// # Panics
///
/// Where `name` is blank, as tokio does ([`Settings::check`] refuses one first).
///
/// [`Settings::check`]: coldstart_bootstrap::Settings::check
pub fn build(plan: &Plan, name: Option<&str>) -> std::io::Result<Runtime> {
    let mut builder = match plan.flavor.value {
        Flavor::CurrentThread => Builder::new_current_thread(),
        Flavor::MultiThread => {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(plan.worker_threads.value);
            b
        }
    };
    builder
        .enable_all()
        .max_blocking_threads(plan.max_blocking_threads.value)
        .thread_stack_size(plan.thread_stack_size.value);
    if let Some(name) = name {
        builder.name(name);
    }
    crate::task::set_stack_size(plan.thread_stack_size.value);
    // The workers only, which tokio starts as it builds the runtime, before any
    // thread of the blocking pool: one of those starts during a request, which would
    // pay for the prewarming. Under current_thread there is no worker to prewarm (the
    // plan turns it off there; a `Planned` of a program's own may not).
    if plan.prewarm.value && plan.flavor.value == Flavor::MultiThread {
        let stack = plan.thread_stack_size.value;
        let workers = std::sync::atomic::AtomicUsize::new(plan.worker_threads.value);
        builder.on_thread_start(move || {
            use std::sync::atomic::Ordering::Relaxed;
            let worker = workers
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                .is_ok();
            if worker {
                prewarm(stack);
            }
        });
    }
    builder.build()
}

/// [`build`], ending the process with one line and exit code 71 when tokio panics
/// while building: it does when the OS refuses a worker thread (a cgroup's
/// `pids.max`, `RLIMIT_NPROC`). Unwinding is no way out of that panic: the blocking
/// pool, dropped as it unwinds, waits for the workers already started, and they wait
/// for a shutdown that never comes, so the process would hang. The hook is in place
/// only while the runtime is built; a panic on another thread meanwhile goes to the
/// hook that was there before.
fn build_or_exit(plan: &Plan, name: Option<&str>) -> std::io::Result<Runtime> {
    use std::sync::Arc;
    let previous = Arc::new(std::panic::take_hook());
    let others = Arc::clone(&previous);
    let building = std::thread::current().id();
    let workers = plan.worker_threads.value;
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != building {
            return others(info);
        }
        let payload = info.payload();
        let why = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        exit(&StartError::Runtime(std::io::Error::other(
            refused_threads(why, workers),
        )))
    }));
    let built = build(plan, name);
    // Dropping this build's hook lets go of its hold on `previous`.
    drop(std::panic::take_hook());
    if let Ok(previous) = Arc::try_unwrap(previous) {
        std::panic::set_hook(previous);
    }
    built
}

/// What to say when tokio panicked with `why` while starting `workers` worker threads:
/// the panic, the limits that may have refused a thread, and what to change.
fn refused_threads(why: &str, workers: usize) -> String {
    if !why.contains("spawn") {
        return format!("tokio panicked: {why}");
    }
    let mut limits = Vec::new();
    if let Some(pids) = task_limit() {
        limits.push(pids);
    }
    let mut nproc = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer; geteuid has no
    // preconditions. The kernel does not hold root to RLIMIT_NPROC.
    if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut nproc) == 0 && libc::geteuid() != 0 }
        && nproc.rlim_cur != libc::RLIM_INFINITY
    {
        limits.push(format!("RLIMIT_NPROC {}", nproc.rlim_cur));
    }
    let limits = match limits.is_empty() {
        true => String::new(),
        false => format!(" ({})", limits.join(", ")),
    };
    format!(
        "{why}; the plan asked for {workers} worker threads and a task limit{limits} refused one: set COLDSTART_WORKER_THREADS to fewer or COLDSTART_FLAVOR=current_thread, or raise the limit"
    )
}

/// The cgroup task limit the probe finds, as `pids.max N in DIR`; read only when a
/// thread was refused, off the start-up path.
fn task_limit() -> Option<String> {
    let (tasks, source) = Probe::new().task_limit()?;
    let file = match source {
        Source::CgroupV1(file) | Source::CgroupV2(file) => file,
        _ => return Some(format!("cgroup pids.max {tasks}")),
    };
    let dir = std::path::Path::new(&file).parent()?;
    Some(format!("cgroup pids.max {tasks} in {}", dir.display()))
}

/// How much of a new thread's stack prewarming touches: 64 KiB, and at most a
/// quarter of the stack (the smallest stack the plan accepts is 64 KiB, less what
/// the thread's own data takes of it).
const PREWARM_STACK: usize = 64 << 10;

/// Takes a runtime thread's first-touch page faults and allocator set-up now rather
/// than during the first request, on a thread whose stack is `stack` bytes.
fn prewarm(stack: usize) {
    const PAGE: usize = 4 << 10;
    /// One page per frame, `pages` frames deep.
    #[inline(never)]
    fn touch_stack(pages: usize) {
        let mut page = [0u8; PAGE];
        std::hint::black_box(&mut page);
        if pages > 1 {
            touch_stack(pages - 1);
        }
    }
    touch_stack(PREWARM_STACK.min(stack / 4) / PAGE);
    drop(std::hint::black_box(Vec::<u8>::with_capacity(256)));
    #[cfg(test)]
    tests::PREWARMED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Ends the program with a one-line message and the exit code for `e`.
fn exit(e: &StartError) -> ! {
    let message = e.to_string();
    coldstart_bootstrap::say!("coldstart: {message}");
    let (cause, code) = match e {
        StartError::Config(_) => (Cause::Config, EXIT_CONFIG),
        StartError::Runtime(_) => (Cause::Runtime, EXIT_OS),
        StartError::Again => (Cause::Program, EXIT_AGAIN),
    };
    failure::report(cause, &message);
    std::process::exit(code)
}

/// Runs `body` to completion on a runtime planned for this process, with settings
/// from the process environment and the configuration file. Once per process.
///
/// # Exits
///
/// With a one-line message on stderr and exit code 78 when a setting is invalid, 71
/// when the runtime cannot be built, or 70 when a runtime was started already in this
/// process; never with a panic. After SIGTERM or SIGINT, once the shutdown hooks have
/// run, with 0 (unless the body returned by itself within the drain deadline), and
/// with 70 after a `fatal` deferred init failed: it does not return then.
pub fn block_on<F: Future>(settings: &Settings, body: F) -> F::Output {
    block_on_in(settings, &load_env(Env::process()), body)
}

/// [`block_on`] with the settings layers given (see [`load_env`]): what
/// `#[coldstart::main]` and `coldstart::Builder` expand to.
///
/// # Exits
///
/// As [`block_on`].
pub fn block_on_in<F: Future>(settings: &Settings, env: &Env, body: F) -> F::Output {
    let started = start(settings, env).unwrap_or_else(|e| exit(&e));
    let report = started.report;
    let fallback = crate::plan().and_then(|p| p.first_response_fallback.value);
    let drain_deadline = crate::plan().map_or(DEFAULT_DRAIN_TIMEOUT, |p| p.drain_timeout.value);
    let work_after = started.work_after;
    let runtime = started.runtime;
    let ended = runtime.block_on(async move {
        init::run_before_serving().await;
        timeline::mark(Phase::InitsDone);
        let stopped = lifecycle::stop_asked();
        if !stopped {
            timeline::mark(Phase::BodyEntered);
        }
        lifecycle::set_serving();
        if let Some(after) = fallback {
            lifecycle::start_fallback(after);
        }
        if work_after {
            crate::task::spawn(async {
                lifecycle::first_response().await;
                // Nothing deferred starts after a signal (a first response made while
                // the signal's shutdown runs).
                if lifecycle::trigger().is_some() && !lifecycle::stop_asked() {
                    init::run_after_first_response().await;
                }
            });
        }
        if report {
            print_report();
        }
        // A panic while the body is dropped (below, cancelled) waits for the hooks.
        let dropped_badly = std::cell::Cell::new(None);
        let ended = {
            let mut body = std::pin::pin!(crate::panics::DropCaught::new(
                crate::panics::caught(body),
                &dropped_badly,
            ));
            if stopped {
                // A signal while the inits ran: the body never starts, not even to drain.
                coldstart_bootstrap::say!(
                    "coldstart: a signal came before serving; the rest of the inits and the body of main do not run"
                );
                Ended::Cancelled
            } else {
                let returned = tokio::select! {
                    output = &mut body => Some(output),
                    _ = lifecycle::shutdown_signal() => None,
                };
                match returned {
                    Some(output) => Ended::Returned(output),
                    None => match lifecycle::drain(body, drain_deadline).await {
                        Some(output) => Ended::Drained(output),
                        None => Ended::Cancelled,
                    },
                }
            }
            // A cancelled body is dropped here, before the hooks: a listener it owns
            // stops taking connections, and what a hook waits on (a channel's last
            // sender, say) is let go. A panic in its drop goes on after the hooks.
        };
        lifecycle::end_of_main().await;
        lifecycle::run_shutdown_hooks().await;
        // Once the hooks are done (the deferred work runs on while they do): no more
        // starts, the one running on a thread of its own ends, and coldstart's other
        // threads, while the runtime they may wait on still runs. A signal ends the
        // wait: the program then ends as after any signal, without waiting for them.
        if !lifecycle::stop_asked() {
            tokio::select! {
                () = async {
                    init::end_deferred().await;
                    crate::task::wait_for_live().await;
                } => {}
                _ = lifecycle::shutdown_signal() => {}
            }
        }
        // What the end of `main` leaves undone. A fatal deferred init has said why it
        // stops.
        if let Some(undone) = init::unfinished().filter(|_| lifecycle::stop_code() == 0) {
            coldstart_bootstrap::say!("coldstart: {undone}");
        }
        (ended, dropped_badly.take())
    });
    let (ended, dropped_badly) = ended;
    // The hooks have run: a signal from here on has its default effect again.
    lifecycle::give_back_default_signals();
    // After a signal the program ends once the hooks are done, however the body
    // ended (it may return by itself on seeing `draining`): dropping the runtime would
    // wait, with no bound and past any further signal, for blocking work still
    // running (a deferred init stuck on the network, say). Without a signal the
    // runtime is dropped as `#[tokio::main]` drops it.
    let runtime = match lifecycle::stop_asked() {
        true => {
            runtime.shutdown_background();
            None
        }
        false => Some(runtime),
    };
    // The body's drop panicked: that panic goes on, the hooks having run, as one of
    // the body's own does.
    if let Some(panic) = dropped_badly {
        drop(runtime);
        std::panic::resume_unwind(panic);
    }
    let output = match ended {
        // A fatal deferred init that failed after the body returned (while the hooks
        // ran) still stops the program with its code; a panic goes on as a panic.
        Ended::Returned(output) if lifecycle::stop_code() == 0 || output.is_err() => output,
        Ended::Returned(_) => std::process::exit(lifecycle::stop_code()),
        // A signal: the body returned by itself; the hooks have run.
        Ended::Drained(output) if lifecycle::stop_code() == 0 => output,
        // The body was cancelled by a signal or stopped by a fatal deferred init; the
        // hooks have run.
        Ended::Drained(_) | Ended::Cancelled => std::process::exit(lifecycle::stop_code()),
    };
    drop(runtime);
    // A panic in the body goes on unwinding once the hooks (the telemetry flush among
    // them) have run.
    output.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

enum Ended<T> {
    /// The body returned before any signal.
    Returned(T),
    /// The body returned after a signal, within the drain deadline.
    Drained(T),
    /// The body was cancelled at a signal or at the drain deadline.
    Cancelled,
}

fn print_report() {
    if let (Some(budget), Some(plan)) = (crate::budget(), crate::plan()) {
        let report = Report {
            budget,
            plan,
            mimalloc: Some(cfg!(feature = "mimalloc")),
        };
        let inits = init::summary().unwrap_or_default();
        coldstart_bootstrap::say!(
            "coldstart: start-up report\n{report}{inits}  {}",
            timeline::timeline()
        );
    }
}

/// Runs a test body the way `#[tokio::test]` does: current_thread unless asked, no
/// probe and no plan, so tests behave the same on every machine. There is no end of
/// `main` and no shutdown: hooks the body registers do not run.
///
/// # Panics
///
/// When tokio cannot build the runtime (a test should fail loudly then), and where
/// `name` is blank, as tokio does.
pub fn block_on_test<F: Future>(
    flavor: Option<Flavor>,
    worker_threads: Option<usize>,
    start_paused: bool,
    name: Option<&str>,
    body: F,
) -> F::Output {
    let mut builder = match Flavor::of_test(flavor, worker_threads) {
        Flavor::MultiThread => {
            let mut b = Builder::new_multi_thread();
            // Without a count, tokio's: one worker per CPU.
            if let Some(n) = worker_threads {
                b.worker_threads(n);
            }
            b
        }
        Flavor::CurrentThread => Builder::new_current_thread(),
    };
    builder.enable_all();
    if let Some(name) = name {
        builder.name(name);
    }
    if start_paused {
        pause(&mut builder);
    }
    #[allow(clippy::expect_used)]
    let runtime = builder
        .build()
        .expect("coldstart: cannot build the test runtime");
    // No init runs in a test: nothing comes after a first response to wait for.
    crate::init::finish_deferred();
    runtime.block_on(body)
}

#[cfg(feature = "test-util")]
fn pause(builder: &mut Builder) {
    builder.start_paused(true);
}

#[cfg(not(feature = "test-util"))]
fn pause(_: &mut Builder) {
    panic!("start_paused needs the `test-util` feature of coldstart");
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use coldstart_bootstrap::{Env, Flavor, Plan, Probe, Settings};

    /// Threads [`super::prewarm`] ran on.
    pub(super) static PREWARMED: AtomicUsize = AtomicUsize::new(0);

    /// Prewarming runs on the workers, not on the blocking pool's threads, which start
    /// during requests (each would pay for it there).
    #[test]
    fn only_the_workers_are_prewarmed() {
        let settings = Settings {
            flavor: Some(Flavor::MultiThread),
            worker_threads: Some(2),
            prewarm: Some(true),
            ..Settings::NONE
        };
        let env = Env::fixed(Vec::<(&str, &str)>::new());
        let plan = Plan::from_budget(&Probe::new().run(), &settings, &env).unwrap();
        let runtime = super::build(&plan, None).unwrap();
        // Started as the runtime is built; each prewarms on its own thread.
        runtime.block_on(async {
            // Bounded, so that a regression fails rather than hangs.
            let workers = async {
                while PREWARMED.load(Ordering::Relaxed) < 2 {
                    tokio::task::yield_now().await;
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(30), workers)
                .await
                .expect("both workers prewarmed");
            for _ in 0..3 {
                tokio::task::spawn_blocking(|| {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                })
                .await
                .unwrap();
            }
        });
        drop(runtime);
        assert_eq!(PREWARMED.load(Ordering::Relaxed), 2);
    }
}

//! The plan: a named strategy and every decision it implies, each with the reason it
//! was made. Pure computation from a [`Budget`], explicit [`Settings`] and the
//! environment; it starts nothing. The thresholds are measured, see BENCHMARKS.md
//! ("Plan thresholds").
//!
//! Precedence, lowest first: the plan, the configuration file, attribute arguments
//! and the builder (code), `TOKIO_WORKER_THREADS` (as tokio honours it: only when
//! code sets no worker count), `COLDSTART_*` variables.

mod reason;
mod report;
pub mod settings;
mod threads;

use std::fmt;

pub use reason::{Origin, Reason, Why};
pub use report::Report;
pub use settings::{PlanError, Settings};

use crate::env::Layer;
use crate::probe::Platform;
use crate::{Budget, Env};
use settings::*;

/// Below this much memory the plan is `minimal` whatever the CPU: on a small board,
/// RSS matters more than throughput.
pub const MINIMAL_BELOW_MEMORY: u64 = 128 << 20;
/// Up to this many cores the plan is `minimal`: with at most one core of quota a
/// second thread has no parallel capacity to use, and current_thread answered first
/// fastest at every quota measured (BENCHMARKS.md, "Plan thresholds").
pub const MINIMAL_UP_TO_CORES: f64 = 1.0;
/// At or above this many cores, and [`THROUGHPUT_FROM_MEMORY`], the plan is `throughput`.
pub const THROUGHPUT_FROM_CORES: f64 = 4.0;
/// See [`THROUGHPUT_FROM_CORES`].
pub const THROUGHPUT_FROM_MEMORY: u64 = 1 << 30;
/// Memory allowed per blocking-pool thread when the cap is derived from the budget.
pub const MEMORY_PER_BLOCKING_THREAD: u64 = 4 << 20;
/// How long deferred work waits for a first response before it starts anyway.
pub const DEFAULT_FIRST_RESPONSE_FALLBACK: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a draining body has to finish its in-flight work after SIGTERM or SIGINT.
/// A third of the 30 s a container runtime (Kubernetes, ECS, Docker) commonly waits
/// before it kills: the shutdown hooks (the telemetry flush) run after the drain, within
/// their own deadlines, and need time left.
pub const DEFAULT_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// tokio's default thread stack size, kept: only touched pages count toward RSS.
pub const DEFAULT_STACK_SIZE: usize = 2 << 20;

/// A named strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// One thread (current_thread scheduler), a small blocking pool, an allocator that
    /// returns memory at once. For budgets of at most one CPU or under 128 MiB.
    Minimal,
    /// A multi-thread scheduler sized to the CPU quota, default allocator settings.
    Balanced,
    /// A multi-thread scheduler sized to the CPU quota, tokio's blocking-pool default.
    Throughput,
}

impl Strategy {
    /// `minimal`, `balanced` or `throughput`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Minimal => "minimal",
            Strategy::Balanced => "balanced",
            Strategy::Throughput => "throughput",
        }
    }
}

/// The tokio scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `tokio::runtime::Builder::new_current_thread`.
    CurrentThread,
    /// `tokio::runtime::Builder::new_multi_thread`.
    MultiThread,
}

impl Flavor {
    /// The scheduler of a test attribute, as tokio's has it: multi-thread when asked
    /// for, or when a worker count is given without a flavor; else current-thread.
    pub fn of_test(flavor: Option<Flavor>, worker_threads: Option<usize>) -> Flavor {
        match (flavor, worker_threads) {
            (Some(Flavor::MultiThread), _) | (None, Some(_)) => Flavor::MultiThread,
            _ => Flavor::CurrentThread,
        }
    }

    /// `current_thread` or `multi_thread`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current_thread",
            Flavor::MultiThread => "multi_thread",
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(Strategy, Flavor);

/// mimalloc's options: those the runtime applies through mimalloc's option API, or,
/// where mimalloc's own variable sets one (`MIMALLOC_PURGE_DELAY`), that variable's,
/// which the runtime leaves to mimalloc (the decision's reason names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocator {
    /// mimalloc `purge_delay` in milliseconds: how long freed memory stays committed
    /// before it is returned to the OS. `None` keeps mimalloc's default (1000 ms in
    /// mimalloc 3); `Some(0)` returns it at once.
    pub purge_delay_ms: Option<i64>,
}

/// When telemetry exporters may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterStart {
    /// After the first response has been sent (or the fallback timer fires).
    AfterFirstResponse,
}

/// One decision and the reason it was made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision<T> {
    /// What was decided.
    pub value: T,
    /// Why.
    pub reason: Reason,
}

/// The plan for this process.
///
/// ```
/// use coldstart_bootstrap::{Env, Figure, Plan, Probe, Settings, Source, Strategy};
/// // A 0.25-CPU, 64 MiB container:
/// let mut budget = Probe::new().root("/nonexistent").host(2, 8 << 30).run();
/// budget.cpu_cores = Figure::known(0.25, Source::Given);
/// budget.memory_bytes = Figure::known(64 << 20, Source::Given);
/// let plan = Plan::from_budget(&budget, &Settings::NONE, &Env::fixed::<&str, &str>([]))?;
/// assert_eq!(plan.strategy.value, Strategy::Minimal);
/// assert_eq!(plan.worker_threads.value, 1);
/// # Ok::<(), coldstart_bootstrap::PlanError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The named strategy.
    pub strategy: Decision<Strategy>,
    /// The scheduler.
    pub flavor: Decision<Flavor>,
    /// Worker threads (1 for current_thread: the main thread runs the tasks).
    pub worker_threads: Decision<usize>,
    /// The cap on tokio's blocking pool.
    pub max_blocking_threads: Decision<usize>,
    /// Stack size of runtime threads, in bytes.
    pub thread_stack_size: Decision<usize>,
    /// Allocator options.
    pub allocator: Decision<Allocator>,
    /// Whether runtime threads touch their stacks and set up their allocator heap
    /// before serving.
    pub prewarm: Decision<bool>,
    /// When telemetry exporters may start.
    pub exporters: Decision<ExporterStart>,
    /// How long to wait for a first response before deferred work starts anyway;
    /// `None` waits for ever.
    pub first_response_fallback: Decision<Option<std::time::Duration>>,
    /// After SIGTERM or SIGINT, how long a body that awaits `draining()` has to finish
    /// its in-flight work before it is cancelled and the shutdown hooks run.
    pub drain_timeout: Decision<std::time::Duration>,
    /// The CPU cores the plan was made for.
    pub cores: f64,
    /// The memory the plan was made for.
    pub memory_bytes: u64,
}

/// The CPU figure the plan decides on, and the one the budget line shows: rounded to
/// a hundredth of a core, so that a quota a hair above a whole core (Lambda at 1770 MB
/// has 1.0006 vCPU, a Kubernetes limit of 1001m 1.001) is that core, not a second
/// worker and a multi-thread runtime for 0.06 % of one. Halves round up, as written
/// in decimal: 1.005 is 1.01, though `1.005 * 100.0` is 100.49999999999999 in binary
/// (a quota of 100500 in a period of 100000, Kubernetes' `1005m`). A quota below half
/// a hundredth stays as it is, above 0.
pub(crate) fn to_hundredth(cores: f64) -> f64 {
    // Nudged by far more than the division's error and far less than any quota's
    // step (a microsecond in a period of at most a second): a decimal half is a half.
    let shown = (cores * 100.0 * (1.0 + 1e-12)).round() / 100.0;
    if shown > 0.0 { shown } else { cores }
}

/// The variables mimalloc reads its purge delay from, the older name second: set,
/// either wins over the plan (the runtime then leaves the option to mimalloc).
pub const MIMALLOC_PURGE_DELAY: [&str; 2] = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"];

/// A numeric option's value as mimalloc 3 reads it (`mi_option_init`): its first 64
/// bytes in upper case; empty, `1`, `TRUE`, `YES` or `ON` is 1, `0`, `FALSE`, `NO` or
/// `OFF` is 0, else a decimal number (`strtol`: blanks and a sign before it) with
/// nothing after it. `None` where mimalloc keeps its default.
///
/// ```text
/// "250" -> Some(250)   "" -> Some(1)   "off" -> Some(0)   " 7" -> Some(7)
/// "7 " -> None         "soon" -> None
/// ```
fn mimalloc_option(value: &str) -> Option<i64> {
    let upper: Vec<u8> = value
        .bytes()
        .take(64)
        .map(|b| b.to_ascii_uppercase())
        .collect();
    match upper.as_slice() {
        b"" | b"1" | b"TRUE" | b"YES" | b"ON" => return Some(1),
        b"0" | b"FALSE" | b"NO" | b"OFF" => return Some(0),
        _ => {}
    }
    // `strtol` skips C's blanks (`isspace`) and takes a sign.
    let number = std::str::from_utf8(&upper)
        .ok()?
        .trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let digits = number.strip_prefix(['+', '-']).unwrap_or(number);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits alone: past the type's range, `strtol` gives its end.
    let negative = number.starts_with('-');
    let saturated = if negative { i64::MIN } else { i64::MAX };
    Some(
        number
            .strip_prefix('+')
            .unwrap_or(number)
            .parse()
            .unwrap_or(saturated),
    )
}

/// A core count as the plan has it ([`to_hundredth`]), to two decimals; a quota
/// below half a hundredth, which stays as it is, to two significant digits, cut, not
/// rounded (`0.001`, `0.0049`; not `0.00`, nor `0.005`, which would have been a
/// hundredth: `cpu.max` of `1000 1000000` is a legal quota).
pub(crate) struct ShownCores(pub(crate) f64);

impl std::fmt::Display for ShownCores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cores = self.0;
        if cores <= 0.0 || cores >= 0.005 {
            return write!(f, "{cores:.2}");
        }
        let long = format!("{cores:.15}");
        match long.bytes().position(|b| matches!(b, b'1'..=b'9')) {
            Some(first) => f.write_str(long[..(first + 2).min(long.len())].trim_end_matches('0')),
            None => write!(f, "{cores:e}"),
        }
    }
}

impl Plan {
    /// Plans for `budget`, with explicit `settings` from code and overrides from `env`.
    ///
    /// # Errors
    ///
    /// A `COLDSTART_*` (or `TOKIO_WORKER_THREADS`) variable with a value it does not
    /// accept, or settings that contradict each other (`flavor = "current_thread"`
    /// with more than one worker thread). Variables are read in the order of the
    /// plan's fields, so of two bad ones the first is reported.
    pub fn from_budget(budget: &Budget, settings: &Settings, env: &Env) -> Result<Plan, PlanError> {
        settings.check()?;
        let room = Room::of(budget);
        let strategy = choose(
            room.strategy(),
            settings.strategy,
            STRATEGY.read_env_over(env, parse_strategy, settings.strategy.is_some())?,
            STRATEGY,
        );
        let s = strategy.value;
        let (flavor, worker_threads) =
            threads::flavor_and_workers(s, room.cores, budget.host_cpus.value, settings, env)?;
        let max_blocking_threads = threads::max_blocking_threads(s, room.memory, settings, env)?;
        let thread_stack_size = choose(
            Decision {
                value: DEFAULT_STACK_SIZE,
                reason: Reason::plan(Why::StackTouchedOnly),
            },
            settings.thread_stack_size,
            THREAD_STACK_SIZE.read_env_over(
                env,
                parse_stack_size,
                settings.thread_stack_size.is_some(),
            )?,
            THREAD_STACK_SIZE,
        );
        let allocator = allocator(s, env);
        let prewarm = prewarm(flavor.value, settings, env)?;
        let exporters = Decision {
            value: ExporterStart::AfterFirstResponse,
            reason: Reason::plan(Why::ExportersAfterFirstResponse),
        };
        // No attribute argument for these two: only the variable can override them.
        let first_response_fallback = choose(
            match budget.platform {
                Platform::AwsLambda => Decision {
                    value: None,
                    reason: Reason::plan(Why::NoFallbackOnLambda),
                },
                Platform::Linux => Decision {
                    value: Some(DEFAULT_FIRST_RESPONSE_FALLBACK),
                    reason: Reason::plan(Why::FallbackForIdlePrograms),
                },
            },
            None,
            FIRST_RESPONSE_FALLBACK.read_env(env, parse_fallback)?,
            FIRST_RESPONSE_FALLBACK,
        );
        let drain_timeout = choose(
            Decision {
                value: DEFAULT_DRAIN_TIMEOUT,
                reason: Reason::plan(Why::DrainBeforeFlush),
            },
            None,
            DRAIN_TIMEOUT.read_env(env, parse_duration)?,
            DRAIN_TIMEOUT,
        );

        Ok(Plan {
            first_response_fallback,
            drain_timeout,
            strategy,
            flavor,
            worker_threads,
            max_blocking_threads,
            thread_stack_size,
            allocator,
            prewarm,
            exporters,
            cores: room.cores,
            memory_bytes: room.memory,
        })
    }
}

/// The CPU and memory the plan is made for: the budget's limits, else the host's
/// (then not "known" as limits), else one core and [`MINIMAL_BELOW_MEMORY`].
struct Room {
    /// Rounded to a hundredth ([`to_hundredth`]).
    cores: f64,
    cores_known: bool,
    memory: u64,
    memory_known: bool,
}

impl Room {
    fn of(budget: &Budget) -> Room {
        let (cores, cores_known) = match (budget.cpu_cores.value, budget.host_cpus.value) {
            (Some(c), _) => (c, true),
            (None, Some(h)) => (f64::from(h), false),
            (None, None) => (1.0, false),
        };
        let (memory, memory_known) =
            match (budget.memory_bytes.value, budget.host_memory_bytes.value) {
                (Some(m), _) => (m, true),
                (None, Some(h)) => (h, false),
                (None, None) => (MINIMAL_BELOW_MEMORY, false),
            };
        Room {
            cores: to_hundredth(cores),
            cores_known,
            memory,
            memory_known,
        }
    }

    /// The strategy this room calls for: `minimal` on little memory or at most one
    /// core, `throughput` with room for it, else `balanced`.
    fn strategy(&self) -> Decision<Strategy> {
        let Room {
            cores,
            cores_known,
            memory: bytes,
            memory_known,
        } = *self;
        let both_known = cores_known && memory_known;
        let (value, why) = if bytes < MINIMAL_BELOW_MEMORY {
            let threshold = MINIMAL_BELOW_MEMORY;
            let why = Why::MemoryBelow {
                bytes,
                threshold,
                known: memory_known,
            };
            (Strategy::Minimal, why)
        } else if cores <= MINIMAL_UP_TO_CORES {
            let threshold = MINIMAL_UP_TO_CORES;
            let why = Why::CoresAtMost {
                cores,
                threshold,
                known: cores_known,
            };
            (Strategy::Minimal, why)
        } else if cores >= THROUGHPUT_FROM_CORES && bytes >= THROUGHPUT_FROM_MEMORY {
            let why = Why::RoomForThroughput {
                cores,
                bytes,
                known: both_known,
            };
            (Strategy::Throughput, why)
        } else {
            let why = Why::Between {
                cores,
                bytes,
                known: both_known,
            };
            (Strategy::Balanced, why)
        };
        Decision {
            value,
            reason: Reason::plan(why),
        }
    }
}

/// mimalloc's options. mimalloc reads its own variable, which wins over the plan (the
/// runtime then sets nothing): shown as what the program runs with, read as mimalloc
/// reads it (a blank value is set). Else memory is returned at once under `minimal`.
fn allocator(strategy: Strategy, env: &Env) -> Decision<Allocator> {
    match MIMALLOC_PURGE_DELAY
        .iter()
        .find_map(|&name| env.var(name).map(|value| (name, value)))
    {
        Some((name, value)) => Decision {
            value: Allocator {
                purge_delay_ms: mimalloc_option(&value.to_string_lossy()),
            },
            reason: Reason::env(name, Layer::Variable),
        },
        None => Decision {
            value: Allocator {
                purge_delay_ms: (strategy == Strategy::Minimal).then_some(0),
            },
            reason: Reason::plan(Why::FollowsStrategy(strategy)),
        },
    }
}

/// Off unless asked for (not measured faster). Prewarming runs on the worker threads,
/// which current_thread has none of (the blocking pool's start during requests):
/// asked for there, it would do nothing, and the plan says so, whoever asked.
fn prewarm(flavor: Flavor, settings: &Settings, env: &Env) -> Result<Decision<bool>, PlanError> {
    let asked = choose(
        Decision {
            value: false,
            reason: Reason::plan(Why::PrewarmNotMeasuredFaster),
        },
        settings.prewarm,
        PREWARM.read_env_over(env, parse_switch, settings.prewarm.is_some())?,
        PREWARM,
    );
    if asked.value && flavor == Flavor::CurrentThread {
        return Ok(Decision {
            value: false,
            reason: Reason::plan(Why::NoWorkersToPrewarm),
        });
    }
    Ok(asked)
}

/// Explicit beats derived. Layers: the file, then code (an attribute argument or
/// the builder), then the environment.
fn choose<T>(
    derived: Decision<T>,
    argument: Option<T>,
    variable: Option<(T, Layer)>,
    key: Key,
) -> Decision<T> {
    match (variable, argument) {
        (Some((_, Layer::File { .. })), Some(a)) => Decision {
            value: a,
            reason: Reason::attribute(key.argument),
        },
        (Some((v, layer)), _) => Decision {
            value: v,
            reason: Reason::env(key.variable, layer),
        },
        (None, Some(a)) => Decision {
            value: a,
            reason: Reason::attribute(key.argument),
        },
        (None, None) => derived,
    }
}

#[cfg(test)]
mod tests;

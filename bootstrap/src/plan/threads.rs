//! The plan's threads: the scheduler, its worker count (tokio's own
//! `TOKIO_WORKER_THREADS` where tokio would read it), the rule that makes the two
//! agree, and the blocking pool's cap. Steps of [`Plan::from_budget`], pure as the
//! rest of the plan, reading their variables in the order of the plan's fields (see
//! its `# Errors`).
//!
//! [`Plan::from_budget`]: super::Plan::from_budget

use super::settings::*;
use super::{Decision, Flavor, Origin, Reason, Strategy, Why, choose};
use crate::Env;
use crate::env::Layer;

/// The scheduler and its worker count, made to agree as tokio has them.
///
/// # Errors
///
/// A bad `COLDSTART_FLAVOR`, `COLDSTART_WORKER_THREADS` or `TOKIO_WORKER_THREADS`, or
/// more than one worker thread and current_thread given in one layer.
pub(super) fn flavor_and_workers(
    strategy: Strategy,
    cores: f64,
    host_cpus: Option<u32>,
    settings: &Settings,
    env: &Env,
) -> Result<(Decision<Flavor>, Decision<usize>), PlanError> {
    let flavor = choose(
        Decision {
            value: match strategy {
                Strategy::Minimal => Flavor::CurrentThread,
                _ => Flavor::MultiThread,
            },
            reason: Reason::plan(Why::FollowsStrategy(strategy)),
        },
        settings.flavor,
        FLAVOR.read_env_over(env, parse_flavor, settings.flavor.is_some())?,
        FLAVOR,
    );
    let workers = worker_count(&flavor, cores, host_cpus, settings, env)?;
    agree(flavor, workers)
}

/// The worker count, the first given of, highest first: `COLDSTART_WORKER_THREADS`,
/// code, `TOKIO_WORKER_THREADS` (only where code gives no count, and where tokio would
/// read it), the file; else derived: one under current_thread, one per started core
/// of the budget under multi_thread, within the affinity mask and 1024.
fn worker_count(
    flavor: &Decision<Flavor>,
    cores: f64,
    host_cpus: Option<u32>,
    settings: &Settings,
    env: &Env,
) -> Result<Decision<usize>, PlanError> {
    let host_cpus = host_cpus.map_or(usize::MAX, |h| h as usize).max(1);
    // Within the affinity mask, and within what `COLDSTART_WORKER_THREADS` accepts.
    let ceil = (cores.ceil() as usize).clamp(1, host_cpus.min(*WORKERS.end()));
    let derived = match flavor.value {
        Flavor::CurrentThread => Decision {
            value: 1,
            reason: Reason::plan(Why::CurrentThreadIsOne),
        },
        Flavor::MultiThread => Decision {
            value: ceil,
            reason: Reason::plan(Why::CeilOfCores { cores }),
        },
    };
    // Where `TOKIO_WORKER_THREADS` takes the place of the file's count (below), the
    // file's count is not read, so not checked either, as under any variable.
    let file_count_replaced = settings.worker_threads.is_none()
        && WORKER_THREADS.set_in_file(env)
        && (flavor.value == Flavor::MultiThread || flavor.reason.origin == Origin::Plan)
        && env.lookup(TOKIO_WORKER_THREADS.variable).is_some();
    let mut worker_env = if file_count_replaced {
        None
    } else {
        WORKER_THREADS.read_env_over(env, parse_workers, settings.worker_threads.is_some())?
    };
    let from_file = file_count_replaced || matches!(worker_env, Some((_, Layer::File { .. })));
    // Read only where tokio would read it, and where it could count: with no
    // count in code or in a variable (a bad value it would ignore stops nothing
    // then). A variable, it beats the file's count, as every variable does.
    // The file's count makes the plan's current_thread multi-thread (`agree`), so
    // there tokio reads it too.
    let multi_thread =
        flavor.value == Flavor::MultiThread || (from_file && flavor.reason.origin == Origin::Plan);
    let tokio_env = match (settings.worker_threads, worker_env.is_none() || from_file) {
        (None, true) if multi_thread => TOKIO_WORKER_THREADS.read_env(env, parse_tokio_workers)?,
        _ => None,
    };
    if tokio_env.is_some() {
        worker_env = None;
    }
    let derived = match tokio_env {
        Some((n, layer)) => Decision {
            value: n,
            reason: Reason::env(TOKIO_WORKER_THREADS.variable, layer),
        },
        None => derived,
    };
    Ok(choose(
        derived,
        settings.worker_threads,
        worker_env,
        WORKER_THREADS,
    ))
}

/// As tokio has it, any worker count given, one included, asks for the multi-thread
/// scheduler (where `block_in_place` works) unless the flavor is given too; given
/// both, in two layers the later layer wins, as for every setting (a variable over
/// the file), and in one they contradict each other.
fn agree(
    flavor: Decision<Flavor>,
    workers: Decision<usize>,
) -> Result<(Decision<Flavor>, Decision<usize>), PlanError> {
    let workers_given = workers.reason.origin != Origin::Plan;
    if flavor.value != Flavor::CurrentThread || (workers.value <= 1 && !workers_given) {
        return Ok((flavor, workers));
    }
    let multi_thread = Decision {
        value: Flavor::MultiThread,
        reason: Reason {
            origin: workers.reason.origin,
            why: Why::WorkersNeedMultiThread,
        },
    };
    if flavor.reason.origin == Origin::Plan {
        return Ok((multi_thread, workers));
    }
    if workers.value <= 1 {
        return Ok((flavor, workers));
    }
    match workers
        .reason
        .origin
        .rank()
        .cmp(&flavor.reason.origin.rank())
    {
        std::cmp::Ordering::Greater => Ok((multi_thread, workers)),
        std::cmp::Ordering::Less => {
            let one = Decision {
                value: 1,
                reason: Reason {
                    origin: flavor.reason.origin,
                    why: Why::CurrentThreadIsOne,
                },
            };
            Ok((flavor, one))
        }
        std::cmp::Ordering::Equal => Err(PlanError::Conflict(format!(
            "{} asks for {} worker threads but {} asks for the current_thread scheduler, which has one; drop one of them",
            workers.reason.origin, workers.value, flavor.reason.origin
        ))),
    }
}

/// The blocking pool's cap: tokio's 512 for `throughput`, else one thread per
/// [`MEMORY_PER_BLOCKING_THREAD`](super::MEMORY_PER_BLOCKING_THREAD) of the budget,
/// from 4 to 512.
pub(super) fn max_blocking_threads(
    strategy: Strategy,
    memory: u64,
    settings: &Settings,
    env: &Env,
) -> Result<Decision<usize>, PlanError> {
    let derived = match strategy {
        Strategy::Throughput => Decision {
            value: 512,
            reason: Reason::plan(Why::TokioDefault),
        },
        _ => Decision {
            value: (memory / super::MEMORY_PER_BLOCKING_THREAD).clamp(4, 512) as usize,
            reason: Reason::plan(Why::MemoryPerThread {
                bytes: memory,
                per: super::MEMORY_PER_BLOCKING_THREAD,
            }),
        },
    };
    Ok(choose(
        derived,
        settings.max_blocking_threads,
        MAX_BLOCKING_THREADS.read_env_over(
            env,
            parse_blocking,
            settings.max_blocking_threads.is_some(),
        )?,
        MAX_BLOCKING_THREADS,
    ))
}

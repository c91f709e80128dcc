/*!
coldstart's own metrics and tokio's, sampled at scrape time from what the runtime
already keeps: the start-up timeline, the init reports, the probed limits and the plan,
the dropped-telemetry counters, and tokio's stable runtime metrics. Nothing is
recorded on the request path for them.
*/

use coldstart_runtime::lifecycle::Trigger;
use coldstart_runtime::timeline::{PHASES, Phase};
use coldstart_runtime::{init, timeline};

use super::text::{Kind, family, single};
use crate::problem::{Dropped, dropped};

/// Appends coldstart's and tokio's families to `out`.
pub(crate) fn render(out: &mut String) {
    start_up(out);
    limits(out);
    telemetry(out);
    tokio_runtime(out);
}

fn start_up(out: &mut String) {
    // Each process start is one cold start. It is always 1, so `increase()` sees none
    // (a series' first sample is not an increase, and a restart under the same labels
    // is no reset): count them with `changes(process_start_time_seconds[1h])` per
    // instance, plus one per instance that appeared.
    single(
        out,
        "coldstart_cold_starts_total",
        "Cold starts of this process (1 per process).",
        Kind::Counter,
        1.0,
    );
    let t = timeline();
    // Where the fallback timer ended the wait, nothing was answered: that moment is
    // `fallback`, so that `first_response` (and what alerts on it) means a response.
    let fell_back = coldstart_runtime::lifecycle::trigger() == Some(Trigger::Fallback);
    let phases = PHASES.iter().filter_map(|&p| {
        let name = match p {
            Phase::FirstResponse if fell_back => "fallback",
            p => p.as_str(),
        };
        Some(([("phase", name)], t.since_start(p)?.as_secs_f64()))
    });
    family(
        out,
        "coldstart_phase_seconds",
        "Seconds from process start until each start-up phase was reached (first_response: the first response was sent; fallback instead: the fallback timer fired before any).",
        Kind::Gauge,
        phases,
    );
    let reports = init::reports();
    // Two registrations given one name are one series (a series twice makes the
    // scrape and every push invalid): the longer time, failed if either failed.
    let mut took: Vec<([(&str, &str); 2], f64)> = Vec::new();
    let mut failed: Vec<([(&str, &str); 1], f64)> = Vec::new();
    for r in &reports {
        if let Some(d) = r.took {
            keep_max(
                &mut took,
                [("name", r.name), ("place", r.place.as_str())],
                d.as_secs_f64(),
            );
        }
        if let Some(outcome) = &r.outcome {
            keep_max(
                &mut failed,
                [("name", r.name)],
                f64::from(u8::from(outcome.is_err())),
            );
        }
    }
    family(
        out,
        "coldstart_init_duration_seconds",
        "How long each #[coldstart::init] registration took, by where the order placed it.",
        Kind::Gauge,
        took,
    );
    family(
        out,
        "coldstart_init_failed",
        "1 if a #[coldstart::init] registration that has run failed, 0 if it succeeded.",
        Kind::Gauge,
        failed,
    );
}

/// Adds the sample `(labels, value)`, or raises the one of those labels to `value`.
fn keep_max<L: PartialEq>(samples: &mut Vec<(L, f64)>, labels: L, value: f64) {
    match samples.iter_mut().find(|(l, _)| *l == labels) {
        Some((_, kept)) => *kept = kept.max(value),
        None => samples.push((labels, value)),
    }
}

fn limits(out: &mut String) {
    let (Some(budget), Some(plan)) = (coldstart_runtime::budget(), coldstart_runtime::plan())
    else {
        return;
    };
    if let Some(cores) = budget.cpu_cores.value {
        single(
            out,
            "coldstart_limit_cpu_cores",
            "CPU cores the process may use, as probed at start-up.",
            Kind::Gauge,
            cores,
        );
    }
    if let Some(bytes) = budget.memory_bytes.value {
        single(
            out,
            "coldstart_limit_memory_bytes",
            "Bytes of memory the process may use, as probed at start-up.",
            Kind::Gauge,
            bytes as f64,
        );
    }
    let workers = plan.worker_threads.value.to_string();
    let labels = [
        ("strategy", plan.strategy.value.as_str()),
        ("flavor", plan.flavor.value.as_str()),
        ("worker_threads", workers.as_str()),
        ("cgroup_version", budget.cgroup_version.as_str()),
        ("platform", budget.platform.as_str()),
    ];
    family(
        out,
        "coldstart_plan_info",
        "The start-up plan coldstart chose; always 1.",
        Kind::Gauge,
        [(labels, 1.0)],
    );
}

fn telemetry(out: &mut String) {
    let labels = Dropped::ALL.iter().map(|&d| {
        (
            [("signal", d.signal()), ("reason", d.reason())],
            dropped(d) as f64,
        )
    });
    family(
        out,
        "coldstart_telemetry_dropped_total",
        "Spans, metric pushes and metric samples dropped: queue full, export failed, rejected by the collector, push failed, past the limit on metric names.",
        Kind::Counter,
        labels,
    );
}

fn tokio_runtime(out: &mut String) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let m = handle.metrics();
    single(
        out,
        "tokio_workers",
        "Worker threads of the tokio runtime.",
        Kind::Gauge,
        m.num_workers() as f64,
    );
    single(
        out,
        "tokio_alive_tasks",
        "Tasks alive in the tokio runtime.",
        Kind::Gauge,
        m.num_alive_tasks() as f64,
    );
    single(
        out,
        "tokio_global_queue_depth",
        "Tasks waiting in the tokio runtime's global queue.",
        Kind::Gauge,
        m.global_queue_depth() as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_coldstart_main_only_what_is_known_is_written() {
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains("coldstart_cold_starts_total 1\n"));
        assert!(
            out.contains(
                "coldstart_telemetry_dropped_total{signal=\"spans\",reason=\"queue_full\"}"
            )
        );
        // No plan outside #[coldstart::main], and no tokio runtime in this test.
        assert!(!out.contains("coldstart_plan_info"));
        assert!(!out.contains("tokio_workers"));
    }

    #[test]
    fn a_name_given_twice_is_one_series_with_the_larger_value() {
        let mut samples = Vec::new();
        keep_max(&mut samples, [("name", "db")], 0.0);
        keep_max(&mut samples, [("name", "cache")], 0.5);
        keep_max(&mut samples, [("name", "db")], 1.0);
        keep_max(&mut samples, [("name", "db")], 0.0);
        assert_eq!(
            samples,
            [([("name", "db")], 1.0), ([("name", "cache")], 0.5)]
        );
    }
}

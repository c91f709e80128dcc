//! The budget and the plan as people read them: the block `COLDSTART_LOG=debug` prints
//! at start-up and the body of `cargo coldstart doctor`. One renderer, so they agree.

use std::fmt;

use super::reason::Bytes;
use super::{Decision, Plan};
use crate::{Budget, Figure};

/// Renders a budget and the plan made from it.
///
/// ```
/// use coldstart_bootstrap::{plan::Report, Env, Plan, Probe, Settings};
/// let budget = Probe::new().run();
/// let plan = Plan::from_budget(&budget, &Settings::NONE, &Env::fixed::<&str, &str>([]))?;
/// let text = Report { budget: &budget, plan: &plan, mimalloc: None }.to_string();
/// assert!(text.contains("strategy"));
/// # Ok::<(), coldstart_bootstrap::PlanError>(())
/// ```
pub struct Report<'a> {
    /// What the probe found.
    pub budget: &'a Budget,
    /// What was planned.
    pub plan: &'a Plan,
    /// Whether the program runs on mimalloc (coldstart's `mimalloc` feature): without
    /// it the plan's allocator settings apply to nothing, and the report says so.
    /// `None` where that is not known (`doctor`, which cannot see how a program was
    /// built): the plan's settings alone.
    pub mimalloc: Option<bool>,
}

struct Cores<'a>(&'a Figure<f64>);
struct Mem<'a>(&'a Figure<u64>);

impl fmt::Display for Cores<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.value {
            // As the plan rounds it: `{:.2}` alone rounds the binary figure, which is
            // below 2.005 for a quota of 2.005 cores, where the plan has 2.01.
            Some(c) => write!(
                f,
                "{} cores ({})",
                super::ShownCores(super::to_hundredth(c)),
                self.0.source
            ),
            None => write!(f, "{}", self.0.source),
        }
    }
}

impl fmt::Display for Mem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.value {
            Some(b) => write!(f, "{} ({})", Bytes(b), self.0.source),
            None => write!(f, "{}", self.0.source),
        }
    }
}

/// A duration as it is written in a setting: `10s`, or `500ms` when not whole seconds.
struct Seconds(std::time::Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

fn row<T>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    d: &Decision<T>,
    value: impl fmt::Display,
) -> fmt::Result {
    writeln!(f, "  {name:<21}{:<19} {}", value.to_string(), d.reason)
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, p) = (self.budget, self.plan);
        writeln!(f, "budget")?;
        writeln!(f, "  {:<21}{}", "cpu", Cores(&b.cpu_cores))?;
        writeln!(f, "  {:<21}{}", "memory", Mem(&b.memory_bytes))?;
        writeln!(f, "  {:<21}{}", "cgroup", b.cgroup_version)?;
        writeln!(f, "  {:<21}{}", "platform", b.platform.as_str())?;
        writeln!(
            f,
            "  {:<21}{} CPUs, {}",
            "host",
            b.host_cpus.value.map_or("?".into(), |c| c.to_string()),
            b.host_memory_bytes
                .value
                .map_or("?".into(), |m| Bytes(m).to_string())
        )?;
        writeln!(f, "plan")?;
        row(f, "strategy", &p.strategy, p.strategy.value)?;
        row(f, "flavor", &p.flavor, p.flavor.value)?;
        row(
            f,
            "worker_threads",
            &p.worker_threads,
            p.worker_threads.value,
        )?;
        row(
            f,
            "max_blocking_threads",
            &p.max_blocking_threads,
            p.max_blocking_threads.value,
        )?;
        row(
            f,
            "thread_stack_size",
            &p.thread_stack_size,
            Bytes(p.thread_stack_size.value as u64),
        )?;
        match (self.mimalloc, p.allocator.value.purge_delay_ms) {
            // The plan's mimalloc settings go unused: said in the reason's column,
            // not as the plan's reason for them.
            (Some(false), _) => writeln!(
                f,
                "  {:<21}{:<19} {}",
                "allocator",
                "system",
                without_mimalloc(cfg!(target_env = "musl"))
            )?,
            (_, Some(ms)) => row(
                f,
                "allocator",
                &p.allocator,
                format!("mimalloc purge {ms}ms"),
            )?,
            (_, None) => row(f, "allocator", &p.allocator, "defaults")?,
        }
        row(
            f,
            "prewarm",
            &p.prewarm,
            if p.prewarm.value { "on" } else { "off" },
        )?;
        row(f, "exporters", &p.exporters, "after 1st response")?;
        let fallback = match p.first_response_fallback.value {
            Some(d) => Seconds(d).to_string(),
            None => "off".to_owned(),
        };
        row(f, "fallback timer", &p.first_response_fallback, fallback)?;
        row(
            f,
            "drain deadline",
            &p.drain_timeout,
            Seconds(p.drain_timeout.value),
        )
    }
}

/// Why the program runs on the system allocator; on musl, what that costs: musl's own
/// allocator served the example about half the requests of glibc's (BENCHMARKS.md,
/// "Static musl builds").
fn without_mimalloc(musl: bool) -> &'static str {
    if musl {
        "built without coldstart's `mimalloc` feature; musl's allocator served about half the requests of glibc's"
    } else {
        "built without coldstart's `mimalloc` feature"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Env, Probe, Settings};

    /// The allocator row of `plan`'s report: its words after the name, one space apart.
    fn allocator_row(budget: &Budget, plan: &Plan, mimalloc: Option<bool>) -> String {
        let text = Report {
            budget,
            plan,
            mimalloc,
        }
        .to_string();
        let line = text.lines().find(|l| l.contains("allocator")).unwrap();
        line.split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The allocator row says what the program runs on where that is known: the
    /// plan's purge delay on mimalloc, the system allocator without the feature.
    #[test]
    fn the_allocator_row_says_what_the_program_runs_on() {
        let budget = Probe::new().run();
        let env = Env::fixed([("COLDSTART_STRATEGY", "minimal")]);
        let plan = Plan::from_budget(&budget, &Settings::NONE, &env).unwrap();
        let row = |mimalloc| allocator_row(&budget, &plan, mimalloc);
        assert!(row(None).starts_with("mimalloc purge 0ms"), "{}", row(None));
        assert_eq!(row(Some(true)), row(None));
        // In its column, the reason said for it; on musl, what its allocator costs.
        assert_eq!(
            row(Some(false)),
            format!("system {}", without_mimalloc(cfg!(target_env = "musl")))
        );
        assert_eq!(
            without_mimalloc(false),
            "built without coldstart's `mimalloc` feature"
        );
        assert!(
            without_mimalloc(true)
                .ends_with("musl's allocator served about half the requests of glibc's"),
            "{}",
            without_mimalloc(true)
        );
        let text = Report {
            budget: &budget,
            plan: &plan,
            mimalloc: Some(false),
        }
        .to_string();
        let line = text.lines().find(|l| l.contains("allocator")).unwrap();
        let strategy = text.lines().find(|l| l.contains("strategy")).unwrap();
        assert_eq!(line.find("system"), strategy.find("minimal"), "{text}");
        assert_eq!(line.find("built"), strategy.find("set by"), "{text}");
    }

    /// mimalloc's own purge delay variable wins over the plan, as mimalloc reads it
    /// itself: the row shows its value as mimalloc reads it and says it set it, under
    /// every strategy (the plan's 0 ms, or `defaults`, was shown while the program ran
    /// with the variable's).
    #[test]
    fn mimallocs_own_variable_is_the_allocator_row() {
        let budget = Probe::new().run();
        for (vars, shown) in [
            (
                vec![
                    ("COLDSTART_STRATEGY", "minimal"),
                    ("MIMALLOC_PURGE_DELAY", "250"),
                ],
                "mimalloc purge 250ms set by MIMALLOC_PURGE_DELAY",
            ),
            (
                vec![
                    ("COLDSTART_STRATEGY", "throughput"),
                    ("MIMALLOC_RESET_DELAY", "40"),
                ],
                "mimalloc purge 40ms set by MIMALLOC_RESET_DELAY",
            ),
            (
                vec![
                    ("MIMALLOC_RESET_DELAY", "40"),
                    ("MIMALLOC_PURGE_DELAY", " 7"),
                ],
                "mimalloc purge 7ms set by MIMALLOC_PURGE_DELAY",
            ),
            // Read as mimalloc reads it: nothing may follow the number, a switch word
            // is 0 or 1, a blank value is set (and is 1).
            (
                vec![("MIMALLOC_PURGE_DELAY", "7 ")],
                "defaults set by MIMALLOC_PURGE_DELAY",
            ),
            (
                vec![("MIMALLOC_PURGE_DELAY", "soon")],
                "defaults set by MIMALLOC_PURGE_DELAY",
            ),
            (
                vec![("MIMALLOC_PURGE_DELAY", "off")],
                "mimalloc purge 0ms set by MIMALLOC_PURGE_DELAY",
            ),
            (
                vec![("MIMALLOC_PURGE_DELAY", ""), ("MIMALLOC_RESET_DELAY", "40")],
                "mimalloc purge 1ms set by MIMALLOC_PURGE_DELAY",
            ),
            (
                vec![("MIMALLOC_PURGE_DELAY", "-99999999999999999999")],
                "mimalloc purge -9223372036854775808ms set by MIMALLOC_PURGE_DELAY",
            ),
        ] {
            let env = Env::fixed(vars.clone());
            let plan = Plan::from_budget(&budget, &Settings::NONE, &env).unwrap();
            assert_eq!(allocator_row(&budget, &plan, Some(true)), shown, "{vars:?}");
        }
    }
}

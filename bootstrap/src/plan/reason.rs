//! Why a decision was made. Kept as data, not text: nothing is formatted at start-up
//! unless someone prints the plan.

use std::fmt;

use super::{ShownCores, Strategy};
use crate::config::file_key;
use crate::env::Layer;

/// Who made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The plan derived it from the budget.
    Plan,
    /// An attribute argument set it.
    Attribute(&'static str),
    /// An environment variable set it.
    Env(&'static str),
    /// Code set this variable (`coldstart::Builder::set`).
    Code(&'static str),
    /// The configuration file set this variable, at this line.
    File {
        /// The variable the file's key stands for.
        variable: &'static str,
        /// The file's path.
        path: &'static str,
        /// The line, from 1.
        line: u32,
    },
}

impl Origin {
    /// The origin of `variable`'s value, from the layer it was found in.
    pub(crate) fn of(variable: &'static str, layer: Layer) -> Self {
        match layer {
            Layer::Variable => Origin::Env(variable),
            Layer::Code => Origin::Code(variable),
            Layer::File { path, line } => Origin::File {
                variable,
                path,
                line,
            },
        }
    }

    /// The layer's place among the settings' layers, later ones overriding earlier
    /// ones: the plan, the file, code (attribute or builder), a variable.
    pub(crate) fn rank(self) -> u8 {
        match self {
            Origin::Plan => 0,
            Origin::File { .. } => 1,
            Origin::Attribute(_) | Origin::Code(_) => 2,
            Origin::Env(_) => 3,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Plan => f.write_str("the plan"),
            Origin::Attribute(arg) => write!(f, "attribute argument `{arg}`"),
            Origin::Env(var) => write!(f, "{var}"),
            Origin::Code(var) => write!(f, "{var} set in code"),
            Origin::File {
                variable,
                path,
                line,
            } => write!(f, "`{}` in {path} line {line}", file_key(variable)),
        }
    }
}

/// What drove a decision the plan made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Why {
    /// Memory below a threshold (`known` is false when the budget was unknown and the
    /// host's memory was used).
    MemoryBelow {
        /// The memory planned for.
        bytes: u64,
        /// The threshold.
        threshold: u64,
        /// Whether the budget was known.
        known: bool,
    },
    /// CPU at or below a threshold.
    CoresAtMost {
        /// The cores planned for.
        cores: f64,
        /// The threshold.
        threshold: f64,
        /// Whether the budget was known.
        known: bool,
    },
    /// Enough CPU and memory for the throughput strategy.
    RoomForThroughput {
        /// The cores planned for.
        cores: f64,
        /// The memory planned for.
        bytes: u64,
        /// Whether both figures were known.
        known: bool,
    },
    /// Between the minimal and throughput thresholds.
    Between {
        /// The cores planned for.
        cores: f64,
        /// The memory planned for.
        bytes: u64,
        /// Whether both figures were known.
        known: bool,
    },
    /// The strategy's default.
    FollowsStrategy(Strategy),
    /// The current_thread scheduler runs tasks on the main thread.
    CurrentThreadIsOne,
    /// One worker per started core of the quota.
    CeilOfCores {
        /// The cores planned for.
        cores: f64,
    },
    /// An explicit worker count above one needs the multi-thread scheduler.
    WorkersNeedMultiThread,
    /// tokio's own default.
    TokioDefault,
    /// The budget divided by an allowance per thread.
    MemoryPerThread {
        /// The memory planned for.
        bytes: u64,
        /// The allowance per thread.
        per: u64,
    },
    /// Stack pages count toward RSS only when touched, so a smaller reservation saves
    /// nothing the budget counts.
    StackTouchedOnly,
    /// Prewarming did not lower time to first response in the start-up harness.
    PrewarmNotMeasuredFaster,
    /// Prewarming runs on worker threads, and the current_thread scheduler has none.
    NoWorkersToPrewarm,
    /// Exporters never start before the first response.
    ExportersAfterFirstResponse,
    /// Programs that never serve a request still start their deferred work.
    FallbackForIdlePrograms,
    /// On AWS Lambda the first invocation's answer is the first response, and a
    /// frozen process runs nothing: a timer overdue at a late first invocation (with
    /// provisioned concurrency) would start deferred work beside it.
    NoFallbackOnLambda,
    /// In-flight requests finish before the telemetry flush, within a container's
    /// usual 30 s grace.
    DrainBeforeFlush,
    /// An attribute argument or a variable set it.
    Explicit,
}

/// A decision's origin and what drove it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reason {
    /// Who decided.
    pub origin: Origin,
    /// What drove it (for explicit settings, [`Why::Explicit`]).
    pub why: Why,
}

impl Reason {
    pub(crate) fn plan(why: Why) -> Self {
        Reason {
            origin: Origin::Plan,
            why,
        }
    }

    pub(crate) fn env(var: &'static str, layer: Layer) -> Self {
        Reason {
            origin: Origin::of(var, layer),
            why: Why::Explicit,
        }
    }

    pub(crate) fn attribute(arg: &'static str) -> Self {
        Reason {
            origin: Origin::Attribute(arg),
            why: Why::Explicit,
        }
    }
}

/// Bytes in binary units, as people read them (`64 MiB`).
pub(crate) struct Bytes(pub(crate) u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        // A fraction that one decimal rounds away is shown in the unit below, where it
        // shows: 128 MiB less 4 KiB is `131068 KiB`, not "128.0 MiB" beside a 128 MiB
        // threshold it is below.
        loop {
            if value.fract() == 0.0 || unit == 0 {
                return write!(f, "{value:.0} {}", UNITS[unit]);
            }
            let tenths = format!("{value:.1}");
            if !tenths.ends_with(".0") {
                return write!(f, "{tenths} {}", UNITS[unit]);
            }
            value *= 1024.0;
            unit -= 1;
        }
    }
}

fn fallback(known: bool) -> &'static str {
    if known {
        ""
    } else {
        " (budget unknown; host figure used)"
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin != Origin::Plan {
            return write!(f, "set by {}", self.origin);
        }
        match self.why {
            Why::MemoryBelow {
                bytes,
                threshold,
                known,
            } => {
                write!(
                    f,
                    "memory {} is below {}{}",
                    Bytes(bytes),
                    Bytes(threshold),
                    fallback(known)
                )
            }
            Why::CoresAtMost {
                cores,
                threshold,
                known,
            } => {
                write!(
                    f,
                    "CPU {} cores is at most {threshold}{}",
                    ShownCores(cores),
                    fallback(known)
                )
            }
            Why::RoomForThroughput {
                cores,
                bytes,
                known,
            } => write!(
                f,
                "CPU {} cores and memory {} leave room for throughput{}",
                ShownCores(cores),
                Bytes(bytes),
                fallback(known)
            ),
            Why::Between {
                cores,
                bytes,
                known,
            } => write!(
                f,
                "CPU {} cores and memory {} are between minimal and throughput{}",
                ShownCores(cores),
                Bytes(bytes),
                fallback(known)
            ),
            Why::FollowsStrategy(s) => write!(f, "default of strategy {s}"),
            Why::CurrentThreadIsOne => f.write_str("current_thread runs tasks on the main thread"),
            Why::CeilOfCores { cores } => {
                write!(f, "one worker per started core of {}", ShownCores(cores))
            }
            Why::WorkersNeedMultiThread => {
                f.write_str("a worker count asks for multi_thread, as in tokio")
            }
            Why::TokioDefault => f.write_str("tokio's default"),
            Why::MemoryPerThread { bytes, per } => {
                write!(
                    f,
                    "memory {} at {} per blocking thread (4 to 512)",
                    Bytes(bytes),
                    Bytes(per)
                )
            }
            Why::StackTouchedOnly => {
                f.write_str("tokio's default; only touched stack pages count toward RSS")
            }
            Why::PrewarmNotMeasuredFaster => {
                f.write_str("prewarming did not lower time to first response (BENCHMARKS.md)")
            }
            Why::NoWorkersToPrewarm => {
                f.write_str("current_thread has no worker threads to prewarm")
            }
            Why::ExportersAfterFirstResponse => {
                f.write_str("telemetry never delays the first response")
            }
            Why::FallbackForIdlePrograms => {
                f.write_str("programs that serve no request still start deferred work")
            }
            Why::NoFallbackOnLambda => {
                f.write_str("on Lambda the first invocation's answer starts deferred work")
            }
            Why::DrainBeforeFlush => {
                f.write_str("in-flight requests, then the flush, within the usual 30s SIGTERM grace (Kubernetes, ECS)")
            }
            Why::Explicit => f.write_str("set explicitly"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_read_them() {
        assert_eq!(Bytes(64 << 20).to_string(), "64 MiB");
        assert_eq!(Bytes(1536 << 20).to_string(), "1.5 GiB");
        assert_eq!(Bytes(512).to_string(), "512 B");
    }

    /// A figure a hair below a round one is not shown as the round one: the kernel
    /// stores a v1 memory limit of 134217727 as 134213632 (whole pages), which read
    /// "128.0 MiB is below 128 MiB".
    #[test]
    fn a_figure_just_below_a_round_one_is_not_shown_as_it() {
        assert_eq!(Bytes((128 << 20) - 4096).to_string(), "131068 KiB");
        assert_eq!(Bytes((1 << 30) - 4096).to_string(), "1048572 KiB");
        assert_eq!(Bytes((128 << 20) - 1).to_string(), "134217727 B");
        assert_eq!(Bytes((128 << 20) + (100 << 10)).to_string(), "128.1 MiB");
        let why = Reason::plan(Why::MemoryBelow {
            bytes: 134_213_632,
            threshold: 128 << 20,
            known: true,
        });
        assert_eq!(why.to_string(), "memory 131068 KiB is below 128 MiB");
    }
}

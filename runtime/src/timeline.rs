//! The start-up timeline: when each phase was reached, on the kernel's boot-time clock
//! so it can be set against the process start time the kernel records.
//!
//! Marking a phase is one `clock_gettime` and one atomic store: no allocation, no lock.
//! The process start time is read from `/proc/self/stat` only when someone asks for the
//! timeline; the kernel keeps it in clock ticks (usually 10 ms), so figures "since process
//! start" are that coarse, while the durations between coldstart's own phases are exact.
//! The kernel sets that time when the process is created (its fork) and `execve` keeps
//! it: where a wrapper (a shell entrypoint ending in `exec`, a container runtime's init)
//! became this program, its time is counted too. No exec time is kept anywhere in `/proc`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A phase of start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `main` was entered (coldstart's first instruction).
    Main,
    /// The configuration file was read and telemetry installed (when built in): what
    /// runs between `main` and the probe.
    Configured,
    /// The probe finished.
    Probed,
    /// The plan was made.
    Planned,
    /// The `#[coldstart::init]` registrations were ordered (the profile read, if any).
    Ordered,
    /// The tokio runtime was built.
    RuntimeBuilt,
    /// The inits that run before serving finished (`#[coldstart::init]`).
    InitsDone,
    /// The body of the user's `main` started running.
    BodyEntered,
    /// The first request was served (marked by the first-response layer, the Lambda
    /// integration, or the program's own call).
    FirstResponse,
}

/// Every phase, in the order they are reached.
pub const PHASES: [Phase; 9] = [
    Phase::Main,
    Phase::Configured,
    Phase::Probed,
    Phase::Planned,
    Phase::Ordered,
    Phase::RuntimeBuilt,
    Phase::InitsDone,
    Phase::BodyEntered,
    Phase::FirstResponse,
];

impl Phase {
    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Main => "main",
            Phase::Configured => "config",
            Phase::Probed => "probe",
            Phase::Planned => "plan",
            Phase::Ordered => "order",
            Phase::RuntimeBuilt => "runtime",
            Phase::InitsDone => "inits",
            Phase::BodyEntered => "body",
            Phase::FirstResponse => "first_response",
        }
    }
}

#[allow(clippy::declare_interior_mutable_const)]
const UNSET: AtomicU64 = AtomicU64::new(0);
static MARKS: [AtomicU64; PHASES.len()] = [UNSET; PHASES.len()];

/// Now on the kernel's boot-time clock, in ns: the clock of the marks and of the
/// process start time.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_BOOTTIME exists on Linux >= 2.6.39.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Records that `phase` was reached now. Only the first mark of a phase counts.
pub fn mark(phase: Phase) {
    let _ =
        MARKS[phase as usize].compare_exchange(0, now_ns(), Ordering::Relaxed, Ordering::Relaxed);
}

/// Takes back the mark of `phase`: a start refused for its settings (the next start's
/// marks are its own, not the refused one's).
pub(crate) fn unmark(phase: Phase) {
    MARKS[phase as usize].store(0, Ordering::Relaxed);
}

/// A snapshot of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// The kernel's start time of the process (its creation, before any wrapper's
    /// `exec`), in ns since boot (clock-tick resolution).
    pub started_ns: Option<u64>,
    /// Each phase's time in ns since boot, in [`Phase`] order; `None` if not reached.
    pub marks: [Option<u64>; PHASES.len()],
}

/// The timeline so far.
///
/// ```
/// let t = coldstart_runtime::timeline();
/// // Outside #[coldstart::main] no phase has been marked.
/// assert!(t.since_main(coldstart_runtime::Phase::RuntimeBuilt).is_none());
/// ```
pub fn timeline() -> Timeline {
    let mut marks = [None; PHASES.len()];
    for (slot, mark) in marks.iter_mut().zip(&MARKS) {
        *slot = Some(mark.load(Ordering::Relaxed)).filter(|&ns| ns != 0);
    }
    Timeline {
        started_ns: process_start_ns(),
        marks,
    }
}

impl Timeline {
    /// When `phase` was reached, measured from the process start (coarse, see the
    /// module docs).
    pub fn since_start(&self, phase: Phase) -> Option<Duration> {
        Some(Duration::from_nanos(
            self.marks[phase as usize]?.checked_sub(self.started_ns?)?,
        ))
    }

    /// When `phase` was reached, measured from entering `main` (exact).
    pub fn since_main(&self, phase: Phase) -> Option<Duration> {
        let main = self.marks[Phase::Main as usize]?;
        Some(Duration::from_nanos(
            self.marks[phase as usize]?.checked_sub(main)?,
        ))
    }
}

impl fmt::Display for Timeline {
    /// One line: each phase reached, as time since `main`, then time since the process
    /// started.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timeline (since main)")?;
        for phase in PHASES {
            if let Some(d) = self.since_main(phase) {
                write!(f, " {} {}us", phase.as_str(), d.as_micros())?;
            }
        }
        if let Some(d) = self.since_start(Phase::Main) {
            write!(
                f,
                "; main at {}ms after process start (clock-tick resolution; a wrapper that execs the program counts)",
                d.as_millis()
            )?;
        }
        Ok(())
    }
}

/// Field 22 of `/proc/self/stat`, in clock ticks since boot, as ns.
fn process_start_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after.split_ascii_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(ticks.saturating_mul(1_000_000_000) / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_ordered_and_first_wins() {
        mark(Phase::Main);
        mark(Phase::Configured);
        mark(Phase::Probed);
        let first = timeline().marks[Phase::Probed as usize];
        mark(Phase::Probed);
        let t = timeline();
        assert_eq!(t.marks[Phase::Probed as usize], first);
        assert!(t.since_main(Phase::Probed).is_some());
        let started = t.started_ns.expect("Linux has /proc/self/stat");
        assert!(t.marks[0].unwrap() >= started, "main after process start");
        let line = t.to_string();
        assert!(line.starts_with("timeline (since main) main 0us config "));
        assert!(line.contains("ms after process start (clock-tick resolution; a wrapper that execs the program counts)"), "{line}");
    }
}

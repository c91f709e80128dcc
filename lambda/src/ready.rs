/*!
Init duration, measured: from process start to the moment the runtime loop is about
to ask for its first invocation (Lambda's own definition of the init phase).

The kernel records a process's start time only in clock ticks (10 ms on most
systems), too coarse for a function that starts in a few milliseconds. The main
thread's own counters are exact: `/proc/self/schedstat` gives the nanoseconds it has
run and waited to run since it was created, which is its whole life as long as it
never slept. So at the ready moment coldstart reads the clock and that one small
file (the only cost on the init path), and after the first response it reads the
start time from `/proc/self/stat`: the init duration is the main thread's run plus
wait time, kept within the one-tick window the start time allows. It is exact when
the main thread never slept before the first `/next`, and otherwise at most one tick
short.
*/

use std::time::Duration;

/// The clock and the main thread's counters at the ready moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    boot_ns: u64,
    lived_ns: Option<u64>,
}

impl Ready {
    /// Reads both now.
    pub(crate) fn now() -> Ready {
        Ready {
            boot_ns: coldstart_runtime::timeline::now_ns(),
            lived_ns: schedstat_ns(),
        }
    }

    /// Process start to this moment; `None` when `/proc` cannot say.
    pub(crate) fn init_duration(&self) -> Option<Duration> {
        let start = coldstart_runtime::timeline().exec_ns?;
        Some(Duration::from_nanos(within_tick(
            self.boot_ns.checked_sub(start)?,
            tick_ns()?,
            self.lived_ns,
        )))
    }
}

/// `lived` kept within `[upper - tick, upper]`; `upper` without it.
fn within_tick(upper: u64, tick: u64, lived: Option<u64>) -> u64 {
    lived.map_or(upper, |l| l.clamp(upper.saturating_sub(tick), upper))
}

/// The main thread's run and run-queue wait time, in ns (the first two fields).
fn schedstat_ns() -> Option<u64> {
    parse_schedstat(&std::fs::read_to_string("/proc/self/schedstat").ok()?)
}

pub(crate) fn parse_schedstat(text: &str) -> Option<u64> {
    let mut fields = text.split_ascii_whitespace();
    let run: u64 = fields.next()?.parse().ok()?;
    let wait: u64 = fields.next()?.parse().ok()?;
    run.checked_add(wait)
}

fn tick_ns() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz)
        .ok()
        .filter(|&h| h > 0)
        .map(|h| 1_000_000_000 / h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lived_time_is_kept_within_the_tick() {
        let tick = 10_000_000;
        assert_eq!(within_tick(14_000_000, tick, Some(4_300_000)), 4_300_000);
        assert_eq!(within_tick(14_000_000, tick, Some(1_000_000)), 4_000_000);
        assert_eq!(within_tick(14_000_000, tick, Some(20_000_000)), 14_000_000);
        assert_eq!(within_tick(14_000_000, tick, None), 14_000_000);
        assert_eq!(within_tick(3_000_000, tick, Some(2_000_000)), 2_000_000);
    }

    #[test]
    fn schedstat_lines() {
        assert_eq!(parse_schedstat("1190733 52000 3\n"), Some(1_242_733));
        assert_eq!(parse_schedstat("x 1 2"), None);
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn this_process_has_an_init_duration() {
        let ready = Ready::now();
        let d = ready
            .init_duration()
            .expect("Linux has /proc/self/stat and schedstat");
        // The test binary has been running for a while, and not for a day.
        assert!(
            d > Duration::ZERO && d < Duration::from_secs(86_400),
            "{d:?}"
        );
    }
}

/*!
Init duration, measured: from process start to the moment the runtime loop is about
to ask for its first invocation (Lambda's own definition of the init phase).

The kernel records a process's start time only in clock ticks (10 ms on most
systems), too coarse for a function that starts in a few milliseconds. The main
thread's own counters are exact: the nanoseconds it has run (its CPU clock, read on
it) and waited to run (`/proc/self/schedstat`) since it was created, which is its
whole life as long as it never slept. (`schedstat`'s run time is brought up to date
only when the scheduler looks at the thread: a thread that has run less than a tick
without sleeping reads 0 there, and an init of 0 ms was reported.) So at the ready
moment coldstart reads the clock, the thread's CPU clock and that one small file
(the only cost on the init path, and only where an EMF record can carry the figure:
records on and an environment not initialised ahead), and after the first response
it reads the start time from `/proc/self/stat`: the init duration is the main
thread's run plus wait time, kept within the one-tick window the start time
allows. It is exact when the main thread never slept before the first `/next`, and
otherwise at most one tick short.
*/

use std::time::Duration;

/// The clock and the main thread's counters at the ready moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    boot_ns: u64,
    lived_ns: Option<u64>,
}

impl Ready {
    /// Reads the clock now, and the main thread's counters where `init_duration` will
    /// be asked for (`lived`: an EMF record of a cold start may carry it); elsewhere the
    /// file read is left off the init path.
    pub(crate) fn now(lived: bool) -> Ready {
        Ready {
            boot_ns: coldstart_runtime::timeline::now_ns(),
            lived_ns: if lived { schedstat_ns() } else { None },
        }
    }

    /// How long before `now_ns` (the timeline's clock) this moment was.
    pub(crate) fn before(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(now_ns.saturating_sub(self.boot_ns))
    }

    /// Process start to this moment; `None` when `/proc` cannot say.
    pub(crate) fn init_duration(&self) -> Option<Duration> {
        let start = coldstart_runtime::timeline().started_ns?;
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

/// The main thread's run and run-queue wait time, in ns. On the main thread its run
/// time is its CPU clock, exact to now; elsewhere, `schedstat`'s first field.
fn schedstat_ns() -> Option<u64> {
    let (run, wait) = parse_schedstat(&std::fs::read_to_string("/proc/self/schedstat").ok()?)?;
    // The system call, not glibc's `gettid` wrapper, which needs glibc 2.30 (a binary
    // linked against an older glibc, as for Amazon Linux 2, could not use it).
    // SAFETY: getpid and the gettid system call have no preconditions.
    let on_main = unsafe { i64::from(libc::getpid()) == libc::syscall(libc::SYS_gettid) };
    let run = if on_main {
        thread_cpu_ns().unwrap_or(run)
    } else {
        run
    };
    run.checked_add(wait)
}

/// The calling thread's CPU time, in ns.
fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The run and run-queue wait times, in ns, of a `schedstat` line (its first two
/// fields).
pub(crate) fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_ascii_whitespace();
    let run: u64 = fields.next()?.parse().ok()?;
    let wait: u64 = fields.next()?.parse().ok()?;
    Some((run, wait))
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
        assert_eq!(
            parse_schedstat("1190733 52000 3\n"),
            Some((1_190_733, 52_000))
        );
        assert_eq!(parse_schedstat("x 1 2"), None);
        assert_eq!(parse_schedstat(""), None);
    }

    /// The main thread's CPU clock is up to date where `schedstat` may not be.
    #[test]
    fn the_main_threads_run_time_is_read_from_its_cpu_clock() {
        let before = thread_cpu_ns().expect("Linux has thread CPU clocks");
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(2) {}
        let after = thread_cpu_ns().unwrap();
        assert!(after > before, "{before} then {after}");
    }

    #[test]
    fn this_process_has_an_init_duration() {
        assert_eq!(
            Ready::now(false).lived_ns,
            None,
            "nothing read where not needed"
        );
        let ready = Ready::now(true);
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

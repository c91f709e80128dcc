/*!
How long each of many short steps took, for less than a clock read a step.

The init runner times every registration it runs before serving. With
`Instant::now()` at each step, a thousand empty registrations spent about 40 µs of
their start-up in clock reads: the vDSO fences its counter read, and the fence waits
for the cold code's cache misses. A [`Stopwatch`] reads the CPU's counter unfenced at
each step instead (`rdtsc` on x86_64, `cntvct_el0` on aarch64), reads the clock once at
the start and once at the end, and scales the steps by the clock's time for the whole
run. The steps' times therefore add up to what the clock measured, and only how that
time splits between steps rests on the counter.

Where there is no such counter (other architectures, or an x86_64 process that made
`rdtsc` fault with `prctl(PR_SET_TSC)`), every step reads the clock. So does a run of
fewer than [`COUNTER_FROM`] steps: on x86_64, asking whether `rdtsc` may be used is a
`prctl` call, 0.8-2 µs in a fresh process here, and a counter read saves about 20 ns
against a clock read in place (the registry bench: 20 µs over 1000 registrations).
*/

use std::marker::PhantomData;
use std::time::Instant;

/// The fewest steps for which the counter is worth asking for (see the module doc).
const COUNTER_FROM: usize = 64;

/// Times consecutive steps: each [`lap`](Stopwatch::lap) is the step since the last.
///
/// Not `Send`: whether the counter may be read was asked on this thread, and
/// `PR_SET_TSC` is a per-thread setting.
pub(crate) struct Stopwatch {
    started: Instant,
    /// Whether laps are counter ticks (else nanoseconds on `started`'s clock).
    counter: bool,
    last: u64,
    /// The laps so far, added up: what [`stop`](Stopwatch::stop) scales by. Not the
    /// last reading less the first: a counter that steps back (a thread moved to a
    /// core whose counter lags) gives a lap of 0, and the total must agree.
    total: u64,
    _this_thread: PhantomData<*const ()>,
}

impl Stopwatch {
    /// Starts timing the first of `steps` steps.
    pub(crate) fn start(steps: usize) -> Stopwatch {
        Stopwatch::new(steps >= COUNTER_FROM && counter::usable())
    }

    fn new(counter: bool) -> Stopwatch {
        let started = Instant::now();
        Stopwatch {
            started,
            counter,
            last: if counter { counter::read() } else { 0 },
            total: 0,
            _this_thread: PhantomData,
        }
    }

    /// Ends the current step and starts the next; the step's length in units that
    /// [`Scale::nanos`] turns into nanoseconds.
    pub(crate) fn lap(&mut self) -> u64 {
        let now = if self.counter {
            counter::read()
        } else {
            u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
        };
        let step = now.saturating_sub(self.last);
        self.last = now;
        self.total = self.total.saturating_add(step);
        step
    }

    /// Stops; the scale from this stopwatch's laps to nanoseconds.
    pub(crate) fn stop(self) -> Scale {
        if !self.counter {
            return Scale(1.0);
        }
        let nanos = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Scale::of(nanos, self.total)
    }
}

/// Nanoseconds per lap unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale(f64);

impl Scale {
    /// `units` that took `nanos` in all; none at all scale to 0.
    fn of(nanos: u64, units: u64) -> Scale {
        match units {
            0 => Scale(0.0),
            units => Scale(nanos as f64 / units as f64),
        }
    }

    pub(crate) fn nanos(self, units: u64) -> u64 {
        // `as` saturates; a float multiply a step, not a 128-bit division.
        (units as f64 * self.0) as u64
    }
}

#[cfg(target_arch = "x86_64")]
mod counter {
    /// Whether `rdtsc` may be used: unless the process asked for it to fault
    /// (`PR_TSC_SIGSEGV`), or `prctl` is refused (then the clock is the safe choice).
    pub(super) fn usable() -> bool {
        let mut state: libc::c_int = 0;
        // SAFETY: PR_GET_TSC writes one int through the pointer, which is valid.
        let rc = unsafe { libc::prctl(libc::PR_GET_TSC, &mut state as *mut libc::c_int) };
        rc == 0 && state == libc::PR_TSC_ENABLE
    }

    /// Only after `usable` said yes on this thread: `rdtsc` cannot be unsound, but
    /// it faults (SIGSEGV) where `PR_SET_TSC` said so.
    pub(super) fn read() -> u64 {
        // SAFETY: `rdtsc` exists on every x86_64 CPU and touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
}

#[cfg(target_arch = "aarch64")]
mod counter {
    /// Linux lets user space read the virtual counter (the vDSO's clock reads it);
    /// on cores with timer errata it traps the read and emulates it: correct, slower.
    pub(super) fn usable() -> bool {
        true
    }

    pub(super) fn read() -> u64 {
        let ticks: u64;
        // SAFETY: reads a system register that user space may read (above); touches
        // no memory, no stack and no flags.
        unsafe {
            core::arch::asm!(
                "mrs {}, cntvct_el0",
                out(reg) ticks,
                options(nomem, nostack, preserves_flags)
            )
        };
        ticks
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod counter {
    pub(super) fn usable() -> bool {
        false
    }

    pub(super) fn read() -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Busy for at least `d`, on the clock.
    fn spin(d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {}
    }

    /// Two steps of at least 2 and 8 ms: each scales to at least that (less 1%, for a
    /// counter and a clock that tick at slightly different rates), and together to
    /// no more than the clock's time around the whole run. Not a timing assertion:
    /// the spins end on the clock, and a slow or busy machine only lengthens steps.
    fn two_steps(counter: bool) {
        let outer = Instant::now();
        let mut watch = Stopwatch::new(counter);
        spin(Duration::from_millis(2));
        let short = watch.lap();
        spin(Duration::from_millis(8));
        let long = watch.lap();
        let scale = watch.stop();
        let total = outer.elapsed().as_nanos() as u64;
        let (short, long) = (scale.nanos(short), scale.nanos(long));
        assert!(short >= 1_980_000 && long >= 7_920_000, "{short} {long}");
        assert!(short + long <= total, "{short} + {long} > {total}");
    }

    #[test]
    fn laps_on_the_counter_scale_to_the_clocks_time() {
        if !counter::usable() {
            // x86_64 and aarch64 have one: in CI, where every test must run, its lack
            // is a failure, not a skip.
            assert!(
                !(coldstart_test_support::in_ci()
                    && cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))),
                "no usable cycle counter on {} in CI",
                std::env::consts::ARCH
            );
            coldstart_test_support::skipped(
                "laps_on_the_counter_scale_to_the_clocks_time",
                "no cycle counter on this architecture, or rdtsc made to fault",
            );
            return;
        }
        two_steps(true);
    }

    #[test]
    fn laps_on_the_clock_are_nanoseconds() {
        two_steps(false);
    }

    #[test]
    fn a_scale_shares_the_clocks_time_out_by_units() {
        let scale = Scale::of(3_000, 1_000);
        assert_eq!(
            [0, 1, 250, 1_000].map(|u| scale.nanos(u)),
            [0, 3, 750, 3_000]
        );
        // No units counted (a counter that never moved): every lap is 0, not NaN.
        assert_eq!(Scale::of(3_000, 0).nanos(5), 0);
        assert_eq!(Scale::of(u64::MAX, 1).nanos(u64::MAX), u64::MAX);
    }

    #[test]
    fn few_steps_read_the_clock() {
        assert!(!Stopwatch::start(COUNTER_FROM - 1).counter);
        let many = Stopwatch::start(COUNTER_FROM);
        assert_eq!(many.counter, counter::usable());
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn the_counter_is_usable_and_advances() {
        // The test process has not made `rdtsc` fault (PR_SET_TSC).
        assert!(counter::usable());
        let before = counter::read();
        spin(Duration::from_millis(1));
        assert!(counter::read() > before);
    }
}

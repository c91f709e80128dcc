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

use std::time::Instant;

/// The fewest steps for which the counter is worth asking for (see the module doc).
const COUNTER_FROM: usize = 64;

/// Times consecutive steps: each [`lap`](Stopwatch::lap) is the step since the last.
pub(crate) struct Stopwatch {
    started: Instant,
    /// Whether laps are counter ticks (else nanoseconds on `started`'s clock).
    counter: bool,
    first: u64,
    last: u64,
}

impl Stopwatch {
    /// Starts timing the first of `steps` steps.
    pub(crate) fn start(steps: usize) -> Stopwatch {
        Stopwatch::new(steps >= COUNTER_FROM && counter::usable())
    }

    fn new(counter: bool) -> Stopwatch {
        let started = Instant::now();
        let first = if counter { counter::read() } else { 0 };
        Stopwatch {
            started,
            counter,
            first,
            last: first,
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
        step
    }

    /// Stops; the scale from this stopwatch's laps to nanoseconds.
    pub(crate) fn stop(self) -> Scale {
        if !self.counter {
            return Scale(1.0);
        }
        let nanos = self.started.elapsed().as_nanos() as f64;
        match self.last.saturating_sub(self.first) {
            0 => Scale(0.0),
            ticks => Scale(nanos / ticks as f64),
        }
    }
}

/// Nanoseconds per lap unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale(f64);

impl Scale {
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

    pub(super) fn read() -> u64 {
        // SAFETY: `rdtsc` exists on every x86_64 CPU, and `usable` checked it does
        // not fault in this process.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
}

#[cfg(target_arch = "aarch64")]
mod counter {
    /// Linux gives user space the virtual counter (the vDSO's clock reads it).
    pub(super) fn usable() -> bool {
        true
    }

    pub(super) fn read() -> u64 {
        let ticks: u64;
        // SAFETY: reads a system register Linux lets user space read; no memory access.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack)) };
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
    /// no more than the clock's time around the whole run.
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
            eprintln!("skipped: no usable cycle counter on this architecture");
            return;
        }
        two_steps(true);
    }

    #[test]
    fn laps_on_the_clock_are_nanoseconds() {
        two_steps(false);
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

/*!
The dynamic sampler: sample more when errors rise, less when traffic rises.

```text
p = clamp(base * (1 + k1 * error_pct / 100) / (1 + k2 * log10(qps + 1)), floor, 1)
```

with `qps` and `error_pct` counted over a sliding window of whole seconds by the HTTP
layer and the Lambda integration ([`record`]), `k1 = 0.5`, `k2 = 2`, `floor = 0.01` and a 10 s window unless
configured (DESIGN.md). The decision for a trace is the trace-id ratio test with `p`,
made once, for the span that starts the trace in this process (a root, or a child of a
remote parent); spans under it follow its decision, so all spans of one trace agree
here even as `p` moves between them.

Recording a request is two relaxed atomic adds, plus a reset when a new second
starts; it never locks. Time comes from the coarse monotonic clock, which the kernel
moves at each tick (1 to 10 ms), which is read without the cycle counter, and which
a change of the wall clock does not move back. `p` is
worked out once per tick, by the first decision in it; the others read it from a
cache.
*/

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

use crate::config::Dynamic;

/// The sampling probability for a window with `qps` requests per second of which
/// `error_pct` percent failed.
pub fn probability(base: f64, c: &Dynamic, qps: f64, error_pct: f64) -> f64 {
    // A floor given in code outside [0, 1] (NaN among them) is brought inside it.
    let floor = if c.floor >= 0.0 {
        c.floor.min(1.0)
    } else {
        0.0
    };
    let p = base * (1.0 + c.k1 * error_pct / 100.0) / (1.0 + c.k2 * (qps + 1.0).log10());
    if p.is_nan() {
        return floor;
    }
    p.clamp(floor, 1.0)
}

/// One second of the window.
struct Slot {
    second: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
}

/// Requests and errors per second, for the last `window` seconds.
pub(crate) struct Window {
    slots: Box<[Slot]>,
}

impl Window {
    pub(crate) fn new(seconds: u64) -> Window {
        let slots = (0..seconds.max(1))
            .map(|_| Slot {
                second: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                errors: AtomicU64::new(0),
            })
            .collect();
        Window { slots }
    }

    pub(crate) fn record_at(&self, second: u64, error: bool) {
        let slot = &self.slots[(second % self.slots.len() as u64) as usize];
        let seen = slot.second.load(Ordering::Relaxed);
        // Only forward: a thread that read the clock before another moved the slot
        // on counts in the newer second rather than wiping it.
        if seen < second
            && slot
                .second
                .compare_exchange(seen, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // This thread starts the new second; a count racing with the reset may
            // be lost, which a sampling estimate can afford.
            slot.requests.store(0, Ordering::Relaxed);
            slot.errors.store(0, Ordering::Relaxed);
        }
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(qps, error_pct)` over the window ending at `second` (inclusive).
    pub(crate) fn rates_at(&self, second: u64) -> (f64, f64) {
        let len = self.slots.len() as u64;
        let (mut requests, mut errors) = (0u64, 0u64);
        for slot in self.slots.iter() {
            let s = slot.second.load(Ordering::Relaxed);
            if s <= second && second - s < len {
                requests += slot.requests.load(Ordering::Relaxed);
                errors += slot.errors.load(Ordering::Relaxed);
            }
        }
        let pct = if requests == 0 {
            0.0
        } else {
            errors as f64 * 100.0 / requests as f64
        };
        (requests as f64 / len as f64, pct)
    }
}

static WINDOW: OnceLock<Window> = OnceLock::new();

const NANOS: u64 = 1_000_000_000;

/// Nanoseconds by the coarse monotonic clock: the time of the last tick; 0 (the
/// probability of no traffic) should the clock not be read.
#[cfg(target_os = "linux")]
fn now_tick() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid `timespec` for the call to write.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) } != 0 {
        return 0;
    }
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    seconds.saturating_mul(NANOS).saturating_add(nanos)
}

/// Nanoseconds since the first call, by the monotonic clock.
#[cfg(not(target_os = "linux"))]
fn now_tick() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let since = START.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// Counts one request for the dynamic sampler, `error` when it failed; nothing when
/// the sampler is not in use. The HTTP layer counts every request it ends (a 5xx, a
/// gRPC server error code, a gRPC body that fails before its trailers or a panic as
/// an error, at the response's head but for a gRPC call waiting for its trailers; one
/// the client cancelled as none), and
/// coldstart's Lambda integration every invocation (a handler error or panic, an
/// event that does not deserialise, a timeout and an HTTP event answered with a 5xx
/// as errors). A server that serves
/// without either calls it once per request (`coldstart::telemetry::record_for_sampler`),
/// or the sampler sees no traffic.
///
/// ```
/// // A gRPC call that failed, served without the tower layer.
/// coldstart_exporters::trace::sampler::record(true);
/// ```
pub fn record(error: bool) {
    if let Some(window) = WINDOW.get() {
        window.record_at(now_tick() / NANOS, error);
    }
}

/// Whether the dynamic sampler is in use, so that what [`record`] is given counts:
/// for work done only to tell it whether a request failed.
///
/// ```
/// // No sampler installed here.
/// assert!(!coldstart_exporters::trace::sampler::in_use());
/// ```
pub fn in_use() -> bool {
    WINDOW.get().is_some()
}

/// The dynamic sampler (`OTEL_TRACES_SAMPLER=coldstart_dynamic`).
#[derive(Debug)]
pub struct DynamicSampler {
    base: f64,
    constants: Dynamic,
    /// The tick `probability` was worked out in. It starts at 0 with the probability of
    /// no traffic, which is also the figure for tick 0 (a clock that cannot be read).
    tick: AtomicU64,
    /// The probability of that tick, as `f64` bits.
    probability: AtomicU64,
}

impl Clone for DynamicSampler {
    fn clone(&self) -> Self {
        DynamicSampler::new(self.base, self.constants)
    }
}

/// The window's length in whole seconds, within what `COLDSTART_SAMPLER_WINDOW`
/// accepts (1 s to 1 h): the window keeps a slot per second, and `Dynamic` built in
/// code may hold anything (a month was 62 MB; `Duration::MAX` aborted).
fn window_seconds(window: std::time::Duration) -> u64 {
    window.as_secs().clamp(1, 3600)
}

impl DynamicSampler {
    /// A sampler with base probability `base`, fed by the HTTP layer's counts. The
    /// window is the process's: the first sampler's, from 1 s to 1 h in whole seconds
    /// (a length outside is taken to the nearer end).
    pub fn new(base: f64, constants: Dynamic) -> DynamicSampler {
        let _ = WINDOW.get_or_init(|| Window::new(window_seconds(constants.window)));
        DynamicSampler {
            base,
            constants,
            tick: AtomicU64::new(0),
            probability: AtomicU64::new(probability(base, &constants, 0.0, 0.0).to_bits()),
        }
    }

    /// The probability a new trace is sampled with now.
    pub fn current(&self) -> f64 {
        self.at(now_tick())
    }

    /// The probability at `tick` (nanoseconds, see [`now_tick`]): worked out by the first
    /// call with that tick, read from the cache by the others. Two threads may both
    /// work it out for the same tick; a decision as the tick changes may read the
    /// figure of the tick before. A sampling estimate can afford both.
    fn at(&self, tick: u64) -> f64 {
        if self.tick.load(Ordering::Acquire) == tick {
            return f64::from_bits(self.probability.load(Ordering::Relaxed));
        }
        let (qps, pct) = WINDOW
            .get()
            .map_or((0.0, 0.0), |w| w.rates_at(tick / NANOS));
        let p = probability(self.base, &self.constants, qps, pct);
        self.probability.store(p.to_bits(), Ordering::Relaxed);
        self.tick.store(tick, Ordering::Release);
        p
    }
}

/// The trace-id ratio test of the OpenTelemetry SDK: the low 63 bits of the trace id
/// against `p`.
fn sampled(p: f64, trace_id: TraceId) -> bool {
    if p >= 1.0 {
        return true;
    }
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(low) >> 1) < (p.max(0.0) * (1u64 << 63) as f64) as u64
}

impl ShouldSample for DynamicSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        // A local parent's decision, made already with the `p` of its moment.
        let decided = parent_context.and_then(|cx| {
            let span = cx.span();
            let parent = span.span_context();
            (parent.is_valid() && !parent.is_remote()).then(|| parent.is_sampled())
        });
        let keep = decided.unwrap_or_else(|| sampled(self.current(), trace_id));
        let decision = if keep {
            SamplingDecision::RecordAndSample
        } else {
            SamplingDecision::Drop
        };
        let trace_state = parent_context
            .map(|cx| cx.span().span_context().trace_state().clone())
            .unwrap_or_default();
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_window_from_code_stays_within_what_the_setting_accepts() {
        use std::time::Duration;
        assert_eq!(window_seconds(Duration::from_secs(10)), 10);
        assert_eq!(window_seconds(Duration::from_millis(300)), 1);
        assert_eq!(window_seconds(Duration::from_secs(30 * 86_400)), 3600);
        assert_eq!(window_seconds(Duration::MAX), 3600);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn the_formula_at_chosen_points() {
        let c = Dynamic::default();
        // No traffic, no errors: the base.
        assert!(close(probability(0.5, &c, 0.0, 0.0), 0.5));
        // 9 qps: log10(10) = 1, so divided by 1 + 2 = 3.
        assert!(close(probability(0.9, &c, 9.0, 0.0), 0.3));
        // 99 qps and 20 % errors: 0.9 * 1.1 / 5.
        assert!(close(probability(0.9, &c, 99.0, 20.0), 0.198));
        // 100 % errors at no traffic: 0.8 * 1.5 = 1.2, clamped to 1.
        assert!(close(probability(0.8, &c, 0.0, 100.0), 1.0));
        // 999 999 qps: 1 / (1 + 12), under the floor.
        assert!(close(probability(0.1, &c, 999_999.0, 0.0), 0.01));
        let other = Dynamic {
            k1: 1.0,
            k2: 1.0,
            floor: 0.2,
            ..c
        };
        assert!(close(probability(1.0, &other, 9.0, 50.0), 0.75));
    }

    #[test]
    fn spans_under_a_local_parent_follow_its_decision_whatever_p_is_now() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};
        let sampler = DynamicSampler::new(1.0, Dynamic::default());
        // Its low half is 0: kept for any `p` above 0, whatever traffic other tests
        // record meanwhile.
        let trace_id =
            TraceId::from_hex("4bf92f3577b34da60000000000000000").unwrap_or(TraceId::INVALID);
        let under = |flags, remote| {
            let parent = SpanContext::new(
                trace_id,
                SpanId::from_hex("00f067aa0ba902b7").unwrap_or(SpanId::INVALID),
                flags,
                remote,
                TraceState::default(),
            );
            let cx = Context::new().with_remote_span_context(parent);
            sampler
                .should_sample(Some(&cx), trace_id, "child", &SpanKind::Internal, &[], &[])
                .decision
        };
        // A remote parent's child gets the ratio test: kept.
        assert_eq!(
            under(TraceFlags::default(), true),
            SamplingDecision::RecordAndSample
        );
        // A local parent dropped when p was lower: its child is dropped too.
        assert_eq!(under(TraceFlags::default(), false), SamplingDecision::Drop);
        assert_eq!(
            under(TraceFlags::SAMPLED, false),
            SamplingDecision::RecordAndSample
        );
    }

    #[test]
    fn the_window_counts_the_last_seconds_only() {
        let w = Window::new(10);
        for s in 100..110 {
            w.record_at(s, false);
            w.record_at(s, s % 2 == 0);
        }
        let (qps, pct) = w.rates_at(109);
        assert!(close(qps, 2.0) && close(pct, 25.0), "{qps} {pct}");
        // Ten seconds later, half the window has passed: only 105..=109 count.
        let (qps, _) = w.rates_at(114);
        assert!(close(qps, 1.0), "{qps}");
        // A reused slot starts from zero.
        w.record_at(120, true);
        let (qps, pct) = w.rates_at(120);
        assert!(close(qps, 0.1) && close(pct, 100.0), "{qps} {pct}");
    }

    /// A count stamped with an older second than its slot holds (a thread that read
    /// the clock before another moved the slot on) adds to the newer second; it
    /// used to move the slot back and wipe the newer counts.
    #[test]
    fn a_late_count_does_not_move_its_slot_back() {
        let w = Window::new(10);
        for _ in 0..5 {
            w.record_at(120, false);
        }
        w.record_at(110, true);
        let (qps, pct) = w.rates_at(120);
        assert!(close(qps, 0.6) && close(pct, 100.0 / 6.0), "{qps} {pct}");
    }

    /// A floor given in code outside [0, 1], NaN among them, is brought inside it, so
    /// `p` stays a probability whatever the inputs.
    #[test]
    fn a_floor_from_code_outside_zero_to_one_keeps_p_a_probability() {
        for (floor, low) in [(f64::NAN, 0.0), (1.5, 1.0), (-0.5, 0.0)] {
            let c = Dynamic {
                floor,
                ..Dynamic::default()
            };
            for (qps, pct) in [(0.0, 0.0), (1e9, 0.0), (f64::INFINITY, f64::INFINITY)] {
                let p = probability(0.5, &c, qps, pct);
                assert!((low..=1.0).contains(&p), "floor {floor}: p = {p}");
            }
        }
    }

    #[test]
    fn the_probability_is_worked_out_once_a_tick() {
        // Seconds no other test records in; the process-wide window is the sampler's.
        const S: u64 = 5_000_000_000;
        let sampler = DynamicSampler::new(1.0, Dynamic::default());
        let tick = S * NANOS;
        assert!(close(sampler.at(tick), 1.0), "no traffic: the base");
        let window = WINDOW.get().unwrap_or_else(|| unreachable!("made by new"));
        let len = window.slots.len() as f64;
        for _ in 0..990 {
            window.record_at(S, false);
        }
        assert!(
            close(sampler.at(tick), 1.0),
            "the same tick reads the cache"
        );
        let expected = probability(1.0, &Dynamic::default(), 990.0 / len, 0.0);
        assert!(expected < 0.5, "{expected}");
        let next = tick + 4_000_000;
        assert!(
            close(sampler.at(next), expected),
            "the next tick works it out"
        );
        assert!(close(sampler.clone().at(next), expected));
        // A clock that cannot be read gives tick 0: the figure of no traffic, not 0.
        let unread = DynamicSampler::new(0.8, Dynamic::default());
        assert!(close(unread.at(0), 0.8), "{}", unread.at(0));
    }

    #[test]
    fn ratio_test_matches_the_extremes() {
        let id = TraceId::from_bytes([0xff; 16]);
        assert!(sampled(1.0, id));
        assert!(!sampled(0.999, id));
        assert!(sampled(0.001, TraceId::from_bytes([0; 16])));
        assert!(!sampled(0.0, TraceId::from_bytes([0; 16])));
    }

    proptest! {
        #[test]
        fn probability_stays_within_floor_and_one(
            base in 0.0f64..=1.0,
            k1 in 0.0f64..100.0,
            k2 in 0.0f64..100.0,
            floor in 0.0f64..=1.0,
            qps in 0.0f64..1e12,
            pct in 0.0f64..=100.0,
        ) {
            let c = Dynamic { k1, k2, floor, ..Dynamic::default() };
            let p = probability(base, &c, qps, pct);
            prop_assert!(p >= floor && p <= 1.0, "p = {p}");
        }
    }
}

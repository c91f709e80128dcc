//! The handles a recording goes through: a counter's or a gauge's cell, a histogram's
//! buckets, and the handle of a name past the limits, which keeps nothing and counts
//! what it was given as dropped. Each is a few atomic operations and never locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{CounterFn, GaugeFn, HistogramFn, Key};

use crate::plugin::Value;
use crate::problem::{self, Dropped};

use super::recorded;

/// A counter or a gauge (as `f64` bits), with its key for the plugins.
pub(crate) struct Cell {
    value: AtomicU64,
    key: Key,
}

impl Cell {
    pub(super) fn new(key: &Key, initial: u64) -> Cell {
        Cell {
            value: AtomicU64::new(initial),
            key: key.clone(),
        }
    }

    pub(super) fn load(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    fn add(&self, delta: f64) {
        let _ = self
            .value
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + delta).to_bits())
            });
        recorded(&self.key, Value::GaugeDelta(delta));
    }
}

impl CounterFn for Cell {
    fn increment(&self, n: u64) {
        // Past `u64::MAX` it stays there: wrapped towards 0, Prometheus would read a
        // reset (a scrape between the add and the store may still read the wrapped
        // value once). One atomic add, as before, on the way every request takes.
        if self
            .value
            .fetch_add(n, Ordering::Relaxed)
            .checked_add(n)
            .is_none()
        {
            self.value.store(u64::MAX, Ordering::Relaxed);
        }
        recorded(&self.key, Value::Increment(n));
    }

    fn absolute(&self, n: u64) {
        self.value.fetch_max(n, Ordering::Relaxed);
        recorded(&self.key, Value::Absolute(n));
    }
}

impl GaugeFn for Cell {
    fn increment(&self, delta: f64) {
        self.add(delta);
    }

    fn decrement(&self, delta: f64) {
        self.add(-delta);
    }

    fn set(&self, value: f64) {
        self.value.store(value.to_bits(), Ordering::Relaxed);
        recorded(&self.key, Value::Gauge(value));
    }
}

/// The handle of a name past [`NAMES`](super::NAMES): each sample is counted as dropped.
pub(crate) struct NotKept;

impl NotKept {
    pub(super) fn handle() -> Arc<NotKept> {
        static ONE: std::sync::OnceLock<Arc<NotKept>> = std::sync::OnceLock::new();
        ONE.get_or_init(|| Arc::new(NotKept)).clone()
    }

    fn sample(&self) {
        problem::drop_count(Dropped::MetricNameLimit, 1);
    }
}

impl CounterFn for NotKept {
    fn increment(&self, _: u64) {
        self.sample();
    }
    fn absolute(&self, _: u64) {
        self.sample();
    }
}

impl GaugeFn for NotKept {
    fn increment(&self, _: f64) {
        self.sample();
    }
    fn decrement(&self, _: f64) {
        self.sample();
    }
    fn set(&self, _: f64) {
        self.sample();
    }
}

impl HistogramFn for NotKept {
    fn record(&self, _: f64) {
        self.sample();
    }
}

/// A histogram with fixed buckets: those set for its name ([`Registry::set_buckets`](super::Registry::set_buckets)),
/// else `HTTP_DURATION_BUCKETS`.
pub(crate) struct Buckets {
    pub(super) bounds: &'static [f64],
    /// One count per bound, then `+Inf`.
    pub(super) counts: Box<[AtomicU64]>,
    pub(super) sum_bits: AtomicU64,
    key: Key,
}

impl Buckets {
    pub(super) fn new(key: &Key, bounds: &'static [f64]) -> Buckets {
        Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            key: key.clone(),
        }
    }
}

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        recorded(&self.key, Value::Sample(value));
        let i = if value.is_nan() {
            // Not below any bound: in `+Inf` only.
            self.bounds.len()
        } else {
            self.bounds.partition_point(|&bound| bound < value)
        };
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        if !value.is_finite() {
            // Counted in its bucket, not in the sum: one infinity would make the sum
            // infinite for the rest of the process, and one of each sign (or a NaN)
            // NaN.
            return;
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

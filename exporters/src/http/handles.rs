//! The HTTP metrics' handles, looked up in the registry once per label set and kept.
//!
//! Going through `metrics::counter!` on every request builds a `Key` (a label vector,
//! a status string), hashes it, and compares label sets by sorting them: about half
//! of the layer's cost in the `http_layer` bench. A label set is a (method, route
//! template, status) triple, bounded by design, so its handles are kept after the
//! first request that uses it. Kept only once coldstart's recorder is the global
//! one: a handle taken earlier would point nowhere.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::{OnceLock, RwLock};

use metrics::{Counter, Gauge, Histogram, Label};

use crate::metrics::{HTTP_DURATION, HTTP_IN_FLIGHT, HTTP_REQUESTS};

type Series = (&'static str, &'static str, u16);
/// Kept for the life of the program, as the label sets are: taken out of the map's
/// lock as a reference, with no count to change.
type Handles = &'static (Counter, Histogram);

static SERIES: RwLock<HashMap<Series, Handles, BuildHasherDefault<DefaultHasher>>> =
    RwLock::new(HashMap::with_hasher(BuildHasherDefault::new()));
static IN_FLIGHT: OnceLock<Gauge> = OnceLock::new();

/// Adds one to `http_requests_in_flight` and returns the gauge it added to, for the
/// request to take its one off when it leaves: from the same gauge, though coldstart's
/// recorder is installed in between (the one taken off went to it and the one added
/// nowhere, and the gauge stayed at -1 for good).
pub(crate) fn enter_in_flight() -> Gauge {
    let gauge = if crate::metrics::installed() {
        IN_FLIGHT
            .get_or_init(|| metrics::gauge!(HTTP_IN_FLIGHT))
            .clone()
    } else {
        metrics::gauge!(HTTP_IN_FLIGHT)
    };
    gauge.increment(1.0);
    gauge
}

/// Counts one answered request and records its duration.
pub(crate) fn record(method: &'static str, route: &'static str, status: u16, seconds: f64) {
    let series = (method, route, status);
    let keep = crate::metrics::installed();
    if keep {
        // Taken out of the lock before recording: a plugin's `on_metric` hook runs in
        // the record, and may record HTTP metrics itself.
        let kept = SERIES
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&series)
            .copied();
        if let Some((counter, histogram)) = kept {
            counter.increment(1);
            histogram.record(seconds);
            return;
        }
    }
    let labels = [
        Label::new("method", method),
        Label::new("route", route),
        Label::new("status", status.to_string()),
    ];
    let counter = metrics::counter!(HTTP_REQUESTS, labels.iter());
    let histogram = metrics::histogram!(HTTP_DURATION, labels.iter());
    counter.increment(1);
    histogram.record(seconds);
    if keep {
        let mut map = SERIES.write().unwrap_or_else(|p| p.into_inner());
        // Another request may have kept them meanwhile: one leak per label set.
        map.entry(series)
            .or_insert_with(|| Box::leak(Box::new((counter, histogram))));
    }
}

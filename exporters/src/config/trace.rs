//! What the tracer makes and keeps: the sampler and the dynamic sampler's constants
//! (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, `COLDSTART_SAMPLER_*`), the
//! span queue (`OTEL_BSP_*`), span limits (`OTEL_*_LIMIT`) and the propagators
//! (`OTEL_PROPAGATORS`).

use std::time::Duration;

use coldstart_bootstrap::plan::settings::parse_duration;

use super::reader::{
    Reader, THE_QUEUE_SIZE_IS_USED, TIMEOUT, USING_THE_DEFAULT, USING_THE_KNOWN_ONES, millis,
    timeout,
};

/// Which sampler decides whether a new trace is recorded (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with its ratio.
    TraceIdRatio(f64),
    /// `parentbased_always_on` (the specification's default).
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio` with its ratio.
    ParentBasedTraceIdRatio(f64),
    /// `coldstart_dynamic` with its base probability: QPS and error rate decide.
    Dynamic(f64),
    /// `parentbased_coldstart_dynamic`: the dynamic sampler for root spans.
    ParentBasedDynamic(f64),
}

impl Sampler {
    /// Every kind once (ratios at 1; [`read_sampler`] reads the real argument).
    const KINDS: [Sampler; 8] = [
        Sampler::AlwaysOn,
        Sampler::AlwaysOff,
        Sampler::TraceIdRatio(1.0),
        Sampler::ParentBasedAlwaysOn,
        Sampler::ParentBasedAlwaysOff,
        Sampler::ParentBasedTraceIdRatio(1.0),
        Sampler::Dynamic(1.0),
        Sampler::ParentBasedDynamic(1.0),
    ];

    /// The name `OTEL_TRACES_SAMPLER` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Sampler::AlwaysOn => "always_on",
            Sampler::AlwaysOff => "always_off",
            Sampler::TraceIdRatio(_) => "traceidratio",
            Sampler::ParentBasedAlwaysOn => "parentbased_always_on",
            Sampler::ParentBasedAlwaysOff => "parentbased_always_off",
            Sampler::ParentBasedTraceIdRatio(_) => "parentbased_traceidratio",
            Sampler::Dynamic(_) => "coldstart_dynamic",
            Sampler::ParentBasedDynamic(_) => "parentbased_coldstart_dynamic",
        }
    }
}

/// The dynamic sampler's constants (DESIGN.md):
/// `p = clamp(base * (1 + k1 * error_pct / 100) / (1 + k2 * log10(qps + 1)), floor, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dynamic {
    /// Weight of the error percentage (`COLDSTART_SAMPLER_K1`, default 0.5).
    pub k1: f64,
    /// Weight of the request rate (`COLDSTART_SAMPLER_K2`, default 2).
    pub k2: f64,
    /// The lowest probability (`COLDSTART_SAMPLER_FLOOR`, default 0.01).
    pub floor: f64,
    /// The sliding window QPS and errors are counted over (`COLDSTART_SAMPLER_WINDOW`,
    /// default 10 s).
    pub window: Duration,
}

impl Default for Dynamic {
    fn default() -> Self {
        Dynamic {
            k1: 0.5,
            k2: 2.0,
            floor: 0.01,
            window: Duration::from_secs(10),
        }
    }
}

/// The export queue (`OTEL_BSP_*`, with the specification's defaults). Spans wait
/// here from the first instruction; what does not fit is dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    /// Spans kept at most (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048).
    pub max_spans: usize,
    /// Spans per export (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, 512).
    pub batch: usize,
    /// Time between exports (`OTEL_BSP_SCHEDULE_DELAY`, 5000 ms).
    pub delay: Duration,
    /// Longest an export may take (`OTEL_BSP_EXPORT_TIMEOUT`, 30000 ms).
    pub export_timeout: Duration,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            max_spans: 2048,
            batch: 512,
            delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30_000),
        }
    }
}

/// What one span keeps at most (`OTEL_*_COUNT_LIMIT`, with the specification's
/// defaults); what is past a limit is dropped and counted in the span's own dropped
/// counts, which the exporter sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLimits {
    /// The attribute limits' fallback (`OTEL_ATTRIBUTE_COUNT_LIMIT`, 128): attributes
    /// per span, event or link where that limit's own variable is unset.
    pub any_attributes: u32,
    /// Attributes per span (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, 128).
    pub attributes: u32,
    /// Events per span (`OTEL_SPAN_EVENT_COUNT_LIMIT`, 128).
    pub events: u32,
    /// Links per span (`OTEL_SPAN_LINK_COUNT_LIMIT`, 128).
    pub links: u32,
    /// Attributes per event (`OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, 128).
    pub event_attributes: u32,
    /// Attributes per link (`OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`, 128).
    pub link_attributes: u32,
    /// The value length limit's fallback (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, none).
    pub any_value_length: Option<u32>,
    /// Characters a string attribute value (or each string of an array) keeps, on the
    /// span, its events and links (`OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`; none by default): longer ones are cut.
    pub value_length: Option<u32>,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            any_attributes: 128,
            attributes: 128,
            events: 128,
            links: 128,
            event_attributes: 128,
            link_attributes: 128,
            any_value_length: None,
            value_length: None,
        }
    }
}

impl SpanLimits {
    /// Each limit with its variable, in the order `doctor` shows them.
    pub fn by_variable(&self) -> [(&'static str, u32); 6] {
        [
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", self.any_attributes),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", self.attributes),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", self.events),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", self.links),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", self.event_attributes),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", self.link_attributes),
        ]
    }

    /// The value length limits with their variables, in the order `doctor` shows them.
    pub fn value_lengths(&self) -> [(&'static str, Option<u32>); 2] {
        [
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", self.any_value_length),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", self.value_length),
        ]
    }
}

/// The default [`Config::final_flush_within`](super::Config::final_flush_within):
/// the span flush at shutdown.
pub const FINAL_FLUSH_WITHIN: Duration = Duration::from_secs(5);

const SAMPLERS: &str = "one of `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, \
`parentbased_always_off`, `parentbased_traceidratio`, `coldstart_dynamic`, `parentbased_coldstart_dynamic`";

pub(super) fn read_sampler(r: &mut Reader<'_>) -> Sampler {
    let kind = r
        .read("OTEL_TRACES_SAMPLER", SAMPLERS, |s| {
            Sampler::KINDS
                .into_iter()
                .find(|k| k.name().eq_ignore_ascii_case(s))
        })
        .unwrap_or(Sampler::ParentBasedAlwaysOn);
    let arg = |r: &mut Reader<'_>| {
        r.read(
            "OTEL_TRACES_SAMPLER_ARG",
            "a probability from 0 to 1, such as `0.25`",
            |s| s.parse::<f64>().ok().filter(|p| (0.0..=1.0).contains(p)),
        )
        .unwrap_or(1.0)
    };
    // The argument is read only for the samplers that take one.
    match kind {
        Sampler::TraceIdRatio(_) => Sampler::TraceIdRatio(arg(r)),
        Sampler::ParentBasedTraceIdRatio(_) => Sampler::ParentBasedTraceIdRatio(arg(r)),
        Sampler::Dynamic(_) => Sampler::Dynamic(arg(r)),
        Sampler::ParentBasedDynamic(_) => Sampler::ParentBasedDynamic(arg(r)),
        other => other,
    }
}

pub(super) fn read_dynamic(r: &mut Reader<'_>) -> Dynamic {
    let default = Dynamic::default();
    let non_negative = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
    Dynamic {
        k1: r
            .read(
                "COLDSTART_SAMPLER_K1",
                "a number from 0 up, such as `0.5`",
                non_negative,
            )
            .unwrap_or(default.k1),
        k2: r
            .read(
                "COLDSTART_SAMPLER_K2",
                "a number from 0 up, such as `2`",
                non_negative,
            )
            .unwrap_or(default.k2),
        floor: r
            .read(
                "COLDSTART_SAMPLER_FLOOR",
                "a probability from 0 to 1, such as `0.01`",
                |s| s.parse::<f64>().ok().filter(|p| (0.0..=1.0).contains(p)),
            )
            .unwrap_or(default.floor),
        window: r
            .read(
                "COLDSTART_SAMPLER_WINDOW",
                "a duration such as `10s` (from 1s to 1h, whole seconds)",
                |s| parse_duration(s).filter(|d| d.as_secs() >= 1 && d.subsec_nanos() == 0),
            )
            .unwrap_or(default.window),
    }
}

pub(super) fn read_queue(r: &mut Reader<'_>) -> Queue {
    let default = Queue::default();
    let count = |s: &str| {
        s.parse::<usize>()
            .ok()
            .filter(|n| (1..=1 << 20).contains(n))
    };
    let max_spans = r
        .read(
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "a whole number from 1 to 1048576",
            count,
        )
        .unwrap_or(default.max_spans);
    const BATCH: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
    let batch = match r.read(BATCH, "a whole number from 1 to 1048576", count) {
        Some(batch) if batch > max_spans => {
            if let Some((raw, layer)) = r.layered(BATCH) {
                r.refuse(
                    BATCH,
                    raw,
                    layer,
                    "a whole number no larger than OTEL_BSP_MAX_QUEUE_SIZE",
                    THE_QUEUE_SIZE_IS_USED,
                );
            }
            max_spans
        }
        Some(batch) => batch,
        None => default.batch.min(max_spans),
    };
    Queue {
        max_spans,
        batch,
        delay: r
            .read(
                "OTEL_BSP_SCHEDULE_DELAY",
                "milliseconds, from 0 to 3600000",
                millis,
            )
            .unwrap_or(default.delay),
        export_timeout: r
            .read("OTEL_BSP_EXPORT_TIMEOUT", TIMEOUT, timeout)
            .unwrap_or(default.export_timeout),
    }
}

pub(super) fn read_span_limits(r: &mut Reader<'_>) -> SpanLimits {
    const ACCEPTS: &str = "a whole number from 0 to 1048576";
    let count = |s: &str| s.parse::<u32>().ok().filter(|n| *n <= 1 << 20);
    const ANY: &str = "OTEL_ATTRIBUTE_COUNT_LIMIT";
    let mut limits = SpanLimits::default();
    // The general attribute limit, which each model's own limit overrides (unless
    // the general one's layer overrides the own one's).
    if let Some(n) = r.read(ANY, ACCEPTS, count) {
        limits.any_attributes = n;
        limits.attributes = n;
        limits.event_attributes = n;
        limits.link_attributes = n;
    }
    // Each model's own limit, and whether the general one stands for it.
    let fields = [
        (&mut limits.attributes, true),
        (&mut limits.events, false),
        (&mut limits.links, false),
        (&mut limits.event_attributes, true),
        (&mut limits.link_attributes, true),
    ];
    let own = SpanLimits::default().by_variable().into_iter().skip(1);
    for ((key, _), (field, general)) in own.zip(fields) {
        if general && !r.own_first(key, ANY) {
            continue;
        }
        if let Some(n) = r.read(key, ACCEPTS, count) {
            *field = n;
        }
    }
    const LENGTH: &str = "a whole number of characters from 0 to 1048576";
    const ANY_LENGTH: &str = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT";
    const OWN_LENGTH: &str = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT";
    limits.any_value_length = r.read(ANY_LENGTH, LENGTH, count);
    let own_length = if r.own_first(OWN_LENGTH, ANY_LENGTH) {
        r.read(OWN_LENGTH, LENGTH, count)
    } else {
        None
    };
    limits.value_length = own_length.or(limits.any_value_length);
    limits
}

/// `OTEL_PROPAGATORS`: whether trace context and baggage are on. An entry coldstart
/// does not know (`b3`, say) is named as an error and the known ones are used, so the
/// list never turns on a propagator it does not name; with none known, the default.
pub(super) fn read_propagators(r: &mut Reader<'_>) -> (bool, bool) {
    const KEY: &str = "OTEL_PROPAGATORS";
    const ACCEPTS: &str = "a comma-separated list of `tracecontext`, `baggage`, or `none`";
    let Some((raw, layer)) = r.layered(KEY) else {
        return (true, true);
    };
    let (mut trace_context, mut baggage, mut known, mut unknown) = (false, false, false, false);
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "tracecontext" => trace_context = true,
            "baggage" => baggage = true,
            "none" => {}
            _ => {
                unknown = true;
                continue;
            }
        }
        known = true;
    }
    match (known, unknown) {
        (_, false) => (trace_context, baggage),
        (true, true) => {
            r.refuse(KEY, raw, layer, ACCEPTS, USING_THE_KNOWN_ONES);
            (trace_context, baggage)
        }
        (false, true) => {
            r.refuse(KEY, raw, layer, ACCEPTS, USING_THE_DEFAULT);
            (true, true)
        }
    }
}

/*!
coldstart's tracer: spans that go straight into the span queue when an exporter or a
plugin takes them; otherwise a span is its context alone (ids and flags, for
propagation and log lines), and records into nothing.

It does for a span what the SDK's tracer does: a sampling decision from the configured
sampler, random ids, the caller's trace continued, the span limits, nothing recorded
inside a telemetry-suppressed context, and each ended, sampled span handed on as the
SDK's `SpanData`, which the OTLP exporter takes. What it leaves out is the SDK's tracer
provider: building one at start-up builds and drops a default resource (reading
variables and `/proc/self/exe`) and costs 60-100 µs before the first request is
served. Here start-up only boxes the sampler; the resource is built when the exporter
starts, after the first response.

[`Provider`] is the global provider (`opentelemetry::global::tracer`), so spans a
program or library creates through the global API before the first response are
queued too.
*/

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, Link, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample, SpanData, SpanEvents,
    SpanLimits, SpanLinks,
};

use super::queue::Queue;

/// What every tracer shares: set once, at install.
pub(crate) struct Core {
    pub(crate) sampler: Box<dyn ShouldSample>,
    pub(crate) limits: SpanLimits,
    /// Characters a string attribute value keeps (`OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT`).
    pub(crate) value_length: Option<u32>,
    /// Where ended, sampled spans go; `None` when nothing would take them (no
    /// exporter and no plugin): a span is then its context alone, and keeps no record.
    pub(crate) queue: Option<Arc<Queue>>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("sampler", &self.sampler)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The tracer provider installed as the global one.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    core: &'static Core,
}

impl Provider {
    pub(crate) fn new(core: &'static Core) -> Provider {
        Provider { core }
    }
}

impl opentelemetry::trace::TracerProvider for Provider {
    type Tracer = Tracer;

    fn tracer_with_scope(&self, scope: InstrumentationScope) -> Tracer {
        Tracer {
            scope: Arc::new(scope),
            core: self.core,
        }
    }
}

/// A tracer of one instrumentation scope; cheap to clone.
#[derive(Debug, Clone)]
pub struct Tracer {
    scope: Arc<InstrumentationScope>,
    core: &'static Core,
}

/// Characters the HTTP layer keeps of a value the request's head gives (its path, its
/// query, its `User-Agent`) where `OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT` sets no length.
pub(crate) const REQUEST_VALUE_CHARS: usize = 2048;

impl Tracer {
    /// Characters the HTTP layer keeps of a value a request gives (its path, its query,
    /// its `User-Agent`): the span value length (`OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT`)
    /// where one is set, else 2048. The Lambda integration keeps as many of an HTTP
    /// event's.
    pub fn request_value_chars(&self) -> usize {
        self.core
            .value_length
            .map_or(REQUEST_VALUE_CHARS, |n| n as usize)
    }

    /// Starts a span whose description (its name, attributes, links, events) `describe`
    /// adds to `builder` only once the sampler has decided that the span records: a
    /// span that is not sampled costs no name and no attribute vector. The sampler sees
    /// `builder` as it is before `describe`. The samplers coldstart configures decide
    /// from the parent and the trace id alone (and the dynamic one from the traffic),
    /// so for them the decision is the same as with the whole description.
    pub fn start_described(
        &self,
        builder: SpanBuilder,
        parent_cx: &Context,
        describe: impl FnOnce(&mut SpanBuilder),
    ) -> Span {
        self.build(builder, parent_cx, describe)
    }

    fn build(
        &self,
        mut builder: SpanBuilder,
        parent_cx: &Context,
        describe: impl FnOnce(&mut SpanBuilder),
    ) -> Span {
        if parent_cx.is_telemetry_suppressed() {
            return Span::not_recording(SpanContext::empty_context(), self.core);
        }
        let ids = RandomIdGenerator::default();
        let parent = parent_cx.span();
        let parent = parent.span_context();
        let parent = parent.is_valid().then_some(parent);
        let trace_id = parent.map_or_else(|| ids.new_trace_id(), |p| p.trace_id());
        let span_id = ids.new_span_id();
        let kind = builder.span_kind.take().unwrap_or(SpanKind::Internal);
        let sampling = self.core.sampler.should_sample(
            Some(parent_cx),
            trace_id,
            &builder.name,
            &kind,
            builder.attributes.as_deref().unwrap_or(&[]),
            builder.links.as_deref().unwrap_or(&[]),
        );
        let flags = parent.map_or(TraceFlags::default(), |p| p.trace_flags());
        let sampled = match sampling.decision {
            SamplingDecision::Drop => {
                let context = SpanContext::new(
                    trace_id,
                    span_id,
                    TraceFlags::default(),
                    false,
                    sampling.trace_state,
                );
                return Span::not_recording(context, self.core);
            }
            SamplingDecision::RecordOnly => false,
            SamplingDecision::RecordAndSample => true,
        };
        let context = SpanContext::new(
            trace_id,
            span_id,
            flags.with_sampled(sampled),
            false,
            sampling.trace_state,
        );
        if self.core.queue.is_none() {
            // Nothing would take its record (no exporter, no plugin): it records, as the
            // sampler decided, into nothing; no description and no record are made.
            return Span {
                context,
                data: None,
                recording: true,
                core: self.core,
            };
        }
        describe(&mut builder);
        let limits = &self.core.limits;
        let mut attributes = builder.attributes.take().unwrap_or_default();
        attributes.extend(sampling.attributes);
        last_of_each_key(&mut attributes);
        let dropped_attributes_count = truncate(&mut attributes, limits.max_attributes_per_span);
        let length = self.core.value_length;
        shorten(&mut attributes, length);
        let mut links = builder.links.take().unwrap_or_default();
        let dropped_links = truncate(&mut links, limits.max_links_per_span);
        // Added to what the caller counted as dropped already.
        for link in &mut links {
            link.dropped_attributes_count = link.dropped_attributes_count.saturating_add(truncate(
                &mut link.attributes,
                limits.max_attributes_per_link,
            ));
            shorten(&mut link.attributes, length);
        }
        let mut events = builder.events.take().unwrap_or_default();
        let dropped_events = truncate(&mut events, limits.max_events_per_span);
        for event in &mut events {
            event.dropped_attributes_count = event.dropped_attributes_count.saturating_add(
                truncate(&mut event.attributes, limits.max_attributes_per_event),
            );
            shorten(&mut event.attributes, length);
        }
        let start_time = builder.start_time.unwrap_or_else(opentelemetry::time::now);
        let data = SpanData {
            span_context: context.clone(),
            parent_span_id: parent.map_or(SpanId::INVALID, |p| p.span_id()),
            parent_span_is_remote: parent.is_some_and(|p| p.is_remote()),
            span_kind: kind,
            name: builder.name,
            start_time,
            end_time: start_time,
            attributes,
            dropped_attributes_count,
            events: events_of(events, dropped_events),
            links: links_of(links, dropped_links),
            status: Status::Unset,
            instrumentation_scope: (*self.scope).clone(),
        };
        Span {
            context,
            data: Some(Box::new(data)),
            recording: true,
            core: self.core,
        }
    }
}

impl opentelemetry::trace::Tracer for Tracer {
    type Span = Span;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Span {
        self.build(builder, parent_cx, |_| {})
    }
}

/// Keeps the first `limit` items; returns how many were dropped.
/// Cuts string values (and each string of an array) to `limit` characters.
fn shorten(attributes: &mut [KeyValue], limit: Option<u32>) {
    let Some(limit) = limit else {
        return;
    };
    let limit = limit as usize;
    let cut = |s: &mut opentelemetry::StringValue| {
        if let Some((end, _)) = s.as_str().char_indices().nth(limit) {
            *s = opentelemetry::StringValue::from(s.as_str()[..end].to_owned());
        }
    };
    for attribute in attributes {
        match &mut attribute.value {
            opentelemetry::Value::String(s) => cut(s),
            opentelemetry::Value::Array(opentelemetry::Array::String(strings)) => {
                strings.iter_mut().for_each(cut);
            }
            _ => {}
        }
    }
}

/// Keeps one attribute per key, the last given, where the first was: an attribute set
/// twice replaces its value (OpenTelemetry's API), and OTLP's keys must be unique.
fn last_of_each_key(attributes: &mut Vec<KeyValue>) {
    let mut i = 0;
    while i < attributes.len() {
        match attributes[..i]
            .iter()
            .position(|a| a.key == attributes[i].key)
        {
            Some(first) => {
                let last = attributes.remove(i);
                attributes[first] = last;
            }
            None => i += 1,
        }
    }
}

fn truncate<T>(items: &mut Vec<T>, limit: u32) -> u32 {
    let limit = limit as usize;
    let dropped = items.len().saturating_sub(limit);
    items.truncate(limit);
    u32::try_from(dropped).unwrap_or(u32::MAX)
}

fn events_of(events: Vec<Event>, dropped: u32) -> SpanEvents {
    let mut all = SpanEvents::default();
    all.events = events;
    all.dropped_count = dropped;
    all
}

fn links_of(links: Vec<Link>, dropped: u32) -> SpanLinks {
    let mut all = SpanLinks::default();
    all.links = links;
    all.dropped_count = dropped;
    all
}

/// A span of [`Tracer`]. Ended at most once: by `end`, or when dropped.
pub struct Span {
    context: SpanContext,
    /// What is recorded; `None` when the span does not record, has ended, or records
    /// into nothing (nothing would take its record).
    data: Option<Box<SpanData>>,
    /// Whether it records: as the sampler decided, until it ends. It says so also
    /// when nothing would take its record (the SDK without a span processor does
    /// the same): code that checks `is_recording` before computing attributes
    /// then computes them for nothing; `OTEL_SDK_DISABLED=true` avoids that.
    recording: bool,
    core: &'static Core,
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("context", &self.context)
            .field("recording", &self.recording)
            .finish()
    }
}

impl Span {
    fn not_recording(context: SpanContext, core: &'static Core) -> Span {
        Span {
            context,
            data: None,
            recording: false,
            core,
        }
    }

    fn finish(&mut self, end_time: Option<SystemTime>) {
        self.recording = false;
        let Some(mut data) = self.data.take() else {
            return;
        };
        data.end_time = end_time.unwrap_or_else(opentelemetry::time::now);
        if let (true, Some(queue)) = (data.span_context.is_sampled(), &self.core.queue) {
            queue.push(*data);
        }
    }
}

impl opentelemetry::trace::Span for Span {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        mut attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        let limits = self.core.limits;
        if let Some(data) = self.data.as_mut() {
            if data.events.len() < limits.max_events_per_span as usize {
                let dropped = truncate(&mut attributes, limits.max_attributes_per_event);
                shorten(&mut attributes, self.core.value_length);
                data.events
                    .events
                    .push(Event::new(name, timestamp, attributes, dropped));
            } else {
                data.events.dropped_count += 1;
            }
        }
    }

    fn span_context(&self) -> &SpanContext {
        &self.context
    }

    fn is_recording(&self) -> bool {
        self.recording
    }

    /// A key already set gets the new value (the limit counts keys, not calls).
    fn set_attribute(&mut self, mut attribute: KeyValue) {
        let limit = self.core.limits.max_attributes_per_span as usize;
        if let Some(data) = self.data.as_mut() {
            shorten(std::slice::from_mut(&mut attribute), self.core.value_length);
            let attributes = &mut data.attributes;
            match attributes.iter().position(|a| a.key == attribute.key) {
                Some(i) => attributes[i] = attribute,
                None if attributes.len() < limit => attributes.push(attribute),
                None => data.dropped_attributes_count += 1,
            }
        }
    }

    /// Ok is final; Unset changes nothing; otherwise the newer status wins (an Error
    /// replaces an Error, whatever their descriptions), but for an Error without a
    /// description, which keeps the one there: the HTTP layer's 5xx after a handler
    /// said why.
    fn set_status(&mut self, status: Status) {
        let Some(data) = self.data.as_mut() else {
            return;
        };
        let keep = match (&data.status, &status) {
            (Status::Ok, _) | (_, Status::Unset) => true,
            (Status::Error { .. }, Status::Error { description }) => description.is_empty(),
            _ => false,
        };
        if !keep {
            data.status = status;
        }
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        if let Some(data) = self.data.as_mut() {
            data.name = new_name.into();
        }
    }

    fn add_link(&mut self, span_context: SpanContext, mut attributes: Vec<KeyValue>) {
        let limits = self.core.limits;
        if let Some(data) = self.data.as_mut() {
            if data.links.links.len() < limits.max_links_per_span as usize {
                let dropped = truncate(&mut attributes, limits.max_attributes_per_link);
                shorten(&mut attributes, self.core.value_length);
                data.links
                    .links
                    .push(Link::new(span_context, attributes, dropped));
            } else {
                data.links.dropped_count += 1;
            }
        }
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        self.finish(Some(timestamp));
    }

    fn end(&mut self) {
        self.finish(None);
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        self.finish(None);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use opentelemetry::trace::{
        Span as _, SpanId, TraceFlags, TraceId, TraceState, Tracer as _, TracerProvider as _,
    };
    use opentelemetry_sdk::trace::{Sampler, SamplingResult};

    use super::*;
    use crate::config;

    /// A tracer of scope `test` on its own queue; a limit of 2 for everything, and 4
    /// characters for a string value.
    fn tracer(sampler: impl ShouldSample + 'static) -> (Tracer, &'static Queue) {
        let limits = SpanLimits {
            max_attributes_per_span: 2,
            max_events_per_span: 2,
            max_links_per_span: 2,
            max_attributes_per_event: 2,
            max_attributes_per_link: 2,
        };
        let core: &'static Core = Box::leak(Box::new(Core {
            sampler: Box::new(sampler),
            limits,
            value_length: Some(4),
            queue: Some(Queue::new(config::Queue {
                max_spans: 100,
                batch: 100,
                delay: Duration::from_secs(3600),
                export_timeout: Duration::from_secs(5),
            })),
        }));
        (
            Provider::new(core).tracer("test"),
            core.queue.as_deref().unwrap(),
        )
    }

    fn remote_parent(flags: TraceFlags) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
            SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
            flags,
            true,
            TraceState::default(),
        ))
    }

    #[test]
    fn a_sampled_span_continues_its_parent_and_is_queued_once_when_it_ends() {
        let (tracer, queue) = tracer(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let parent = remote_parent(TraceFlags::SAMPLED);
        let mut span = tracer
            .span_builder("GET /")
            .with_kind(SpanKind::Server)
            .with_attributes([KeyValue::new("http.route", "/")])
            .start_with_context(&tracer, &parent);
        assert!(span.is_recording());
        span.set_status(Status::error("boom"));
        span.set_status(Status::Unset);
        span.end();
        span.end();
        drop(span);
        let spans = queue.take_all();
        assert_eq!(spans.len(), 1, "ended once, however often end is called");
        let span = &spans[0];
        assert_eq!(
            span.span_context.trace_id(),
            parent.span().span_context().trace_id()
        );
        assert_eq!(span.parent_span_id, SpanId::from(0x00f0_67aa_0ba9_02b7_u64));
        assert!(span.parent_span_is_remote);
        assert!(span.span_context.is_sampled());
        assert!(!span.span_context.is_remote());
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(span.name, "GET /");
        assert_eq!(span.instrumentation_scope.name(), "test");
        assert_eq!(
            span.status,
            Status::error("boom"),
            "Unset does not replace Error"
        );
        assert!(span.end_time >= span.start_time);
    }

    /// An attribute set twice, at the start or later, is one attribute with the last
    /// value, and counts once against the limit; a newer Error replaces an older one
    /// unless it says nothing, while Ok stays.
    #[test]
    fn an_attribute_set_again_replaces_its_value_and_a_newer_error_its_status() {
        let (tracer, queue) = tracer(Sampler::AlwaysOn);
        let mut span = tracer
            .span_builder("s")
            .with_attributes([
                KeyValue::new("http.route", "/a"),
                KeyValue::new("k", "1"),
                KeyValue::new("http.route", "/b"),
            ])
            .start_with_context(&tracer, &Context::new());
        span.set_attribute(KeyValue::new("http.route", "/c"));
        span.set_attribute(KeyValue::new("k", "2"));
        span.set_attribute(KeyValue::new("other", "x"));
        span.set_status(Status::error("upstream timeout"));
        span.set_status(Status::error("circuit open"));
        span.set_status(Status::error(""));
        span.end();
        let mut ok = tracer.start_with_context("ok", &Context::new());
        ok.set_status(Status::Ok);
        ok.set_status(Status::error("late"));
        ok.end();
        let spans = queue.take_all();
        let attributes: Vec<(String, String)> = spans[0]
            .attributes
            .iter()
            .map(|a| (a.key.to_string(), a.value.to_string()))
            .collect();
        assert_eq!(
            attributes,
            [("http.route".into(), "/c".into()), ("k".into(), "2".into())]
        );
        assert_eq!(spans[0].dropped_attributes_count, 1, "`other`, past 2 keys");
        assert_eq!(spans[0].status, Status::error("circuit open"));
        assert_eq!(spans[1].status, Status::Ok, "Ok is final");
    }

    #[test]
    fn a_root_span_gets_a_new_trace_and_a_child_joins_it() {
        let (tracer, queue) = tracer(Sampler::AlwaysOn);
        let root = tracer.start_with_context("root", &Context::new());
        let root_context = root.span_context().clone();
        assert!(root_context.is_valid());
        let cx = Context::new().with_span(root);
        tracer.start_with_context("child", &cx).end();
        drop(cx);
        let spans = queue.take_all();
        let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, ["child", "root"]);
        assert_eq!(spans[0].span_context.trace_id(), root_context.trace_id());
        assert_eq!(spans[0].parent_span_id, root_context.span_id());
        assert!(!spans[0].parent_span_is_remote);
        assert_eq!(spans[1].parent_span_id, SpanId::INVALID);
    }

    #[test]
    fn what_the_sampler_drops_or_only_records_is_never_queued() {
        let (dropping, queue) = tracer(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let span =
            dropping.start_with_context("unsampled parent", &remote_parent(TraceFlags::default()));
        assert!(!span.is_recording());
        assert!(!span.span_context().is_sampled());
        assert!(span.span_context().is_valid(), "ids still propagate");
        drop(span);

        #[derive(Debug, Clone)]
        struct RecordOnly;
        impl ShouldSample for RecordOnly {
            fn should_sample(
                &self,
                _: Option<&Context>,
                _: TraceId,
                _: &str,
                _: &SpanKind,
                _: &[KeyValue],
                _: &[Link],
            ) -> SamplingResult {
                SamplingResult {
                    decision: SamplingDecision::RecordOnly,
                    attributes: Vec::new(),
                    trace_state: TraceState::default(),
                }
            }
        }
        let (recording, record_queue) = tracer(RecordOnly);
        let span = recording.start_with_context("recorded", &Context::new());
        assert!(span.is_recording());
        assert!(!span.span_context().is_sampled());
        drop(span);
        assert_eq!(queue.len() + record_queue.len(), 0);
    }

    #[test]
    fn a_description_is_made_only_for_a_span_that_records() {
        let (tracer, queue) = tracer(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let mut described = 0;
        let mut describe = |span: &mut SpanBuilder| {
            described += 1;
            span.name = "described".into();
            span.attributes = Some(vec![KeyValue::new("http.route", "/")]);
        };
        let builder = || tracer.span_builder("").with_kind(SpanKind::Server);
        let dropped = tracer.start_described(
            builder(),
            &remote_parent(TraceFlags::default()),
            &mut describe,
        );
        assert!(!dropped.is_recording());
        assert!(dropped.span_context().is_valid(), "ids still propagate");
        drop(dropped);
        let sampled = tracer.start_described(
            builder(),
            &remote_parent(TraceFlags::SAMPLED),
            &mut describe,
        );
        assert!(sampled.is_recording());
        drop(sampled);
        assert_eq!(described, 1, "only the sampled span was described");
        let spans = queue.take_all();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "described");
        assert_eq!(spans[0].span_kind, SpanKind::Server);
        assert_eq!(spans[0].attributes, [KeyValue::new("http.route", "/")]);
    }

    /// With nothing to take a span's record (no exporter, no plugin), a sampled span
    /// still carries its ids and says it records until it ends, as the sampler
    /// decided, but nothing is described or kept.
    #[test]
    fn a_span_nothing_would_take_records_into_nothing() {
        let core: &'static Core = Box::leak(Box::new(Core {
            sampler: Box::new(Sampler::AlwaysOn),
            limits: SpanLimits::default(),
            value_length: None,
            queue: None,
        }));
        let tracer = Provider::new(core).tracer("test");
        let mut described = 0;
        let mut span = tracer.start_described(
            SpanBuilder::from_name("nowhere"),
            &remote_parent(TraceFlags::SAMPLED),
            |_| described += 1,
        );
        assert!(span.is_recording());
        assert!(span.span_context().is_sampled() && span.span_context().is_valid());
        assert_eq!(
            span.span_context().trace_id(),
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
            "the trace is continued"
        );
        span.set_attribute(KeyValue::new("ignored", true));
        span.set_status(Status::error("ignored"));
        span.add_event("ignored", vec![KeyValue::new("k", 1)]);
        span.update_name("ignored");
        span.add_link(SpanContext::empty_context(), Vec::new());
        span.end();
        assert!(!span.is_recording(), "an ended span records no more");
        span.end();
        drop(span);
        assert_eq!(described, 0);
        let through_the_api = tracer.start_with_context("api", &Context::new());
        assert!(through_the_api.is_recording());
        assert!(through_the_api.span_context().is_valid());
    }

    #[test]
    fn a_suppressed_context_records_nothing() {
        let (tracer, queue) = tracer(Sampler::AlwaysOn);
        let suppressed = Context::new().with_telemetry_suppressed();
        let span = tracer.start_with_context("export", &suppressed);
        assert!(!span.is_recording());
        assert!(!span.span_context().is_valid());
        drop(span);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn past_a_limit_items_are_dropped_and_counted() {
        let (tracer, queue) = tracer(Sampler::AlwaysOn);
        let three = || {
            (0..3)
                .map(|i| KeyValue::new(format!("k{i}"), i))
                .collect::<Vec<_>>()
        };
        let linked = remote_parent(TraceFlags::SAMPLED)
            .span()
            .span_context()
            .clone();
        let mut span = tracer
            .span_builder("limited")
            .with_attributes(three())
            .with_links(vec![Link::new(linked.clone(), three(), 0); 3])
            // One the caller counted as dropped already, and one past the limit.
            .with_events(vec![Event::new(
                "given",
                SystemTime::UNIX_EPOCH,
                three(),
                1,
            )])
            .start_with_context(&tracer, &Context::new());
        span.set_attribute(KeyValue::new("late", 1));
        for _ in 0..3 {
            span.add_event("event", three());
        }
        span.add_link(linked, Vec::new());
        span.end();
        let spans = queue.take_all();
        let span = &spans[0];
        assert_eq!(span.attributes.len(), 2);
        assert_eq!(
            span.dropped_attributes_count, 2,
            "one from the builder, one set late"
        );
        assert_eq!(span.events.len(), 2);
        assert_eq!(span.events.dropped_count, 2);
        assert_eq!(span.events[0].name, "given");
        assert_eq!(span.events[0].dropped_attributes_count, 2);
        assert_eq!(span.events[1].dropped_attributes_count, 1);
        assert_eq!(span.links.len(), 2);
        assert_eq!(
            span.links.dropped_count, 2,
            "one from the builder, one added late"
        );
        assert_eq!(span.links[0].dropped_attributes_count, 1);
    }

    fn strings(all: &[&'static str]) -> opentelemetry::Array {
        opentelemetry::Array::String(all.iter().map(|s| (*s).into()).collect())
    }

    /// `OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT`: strings (and the strings of an array) are
    /// cut to the limit in characters, wherever they are set; other values stay.
    #[test]
    fn string_values_past_the_length_limit_are_cut_in_characters() {
        let (tracer, queue) = tracer(Sampler::AlwaysOn);
        let long = || {
            vec![
                KeyValue::new("path", "/users/héllo"),
                KeyValue::new(
                    "tags",
                    opentelemetry::Value::Array(strings(&["abcdef", "xy"])),
                ),
            ]
        };
        let mut span = tracer
            .span_builder("long")
            .with_attributes(vec![KeyValue::new("n", 1234567)])
            .start_with_context(&tracer, &Context::new());
        span.set_attribute(KeyValue::new("late", "ééééé"));
        span.add_event("event", long());
        span.add_link(
            remote_parent(TraceFlags::SAMPLED)
                .span()
                .span_context()
                .clone(),
            long(),
        );
        span.end();
        let spans = queue.take_all();
        let span = &spans[0];
        assert_eq!(span.attributes[0].value, opentelemetry::Value::I64(1234567));
        assert_eq!(span.attributes[1].value.as_str(), "éééé");
        for attributes in [&span.events[0].attributes, &span.links[0].attributes] {
            assert_eq!(attributes[0].value.as_str(), "/use");
            assert_eq!(
                attributes[1].value,
                opentelemetry::Value::Array(strings(&["abcd", "xy"]))
            );
        }
    }
}

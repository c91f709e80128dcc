/*!
OTLP's protobuf, written straight from the spans: an `ExportTraceServiceRequest`
for a batch, and the partial success read from the collector's answer.

opentelemetry-otlp converts every span into opentelemetry-proto's messages first (a
vector per id, a string per attribute key and value) and prost then walks them twice;
here each span's size is computed from the span itself and its fields are written into
one buffer of exactly that size: a batch costs the body, a list of sizes and one list
of spans per scope (and a string for each trace state that is not empty), not an
allocation per field (`benches/benches/otlp_encode.rs` measures both ways side by
side). Each message has a size function and a writer next to each other that go
through the same fields in the same order. The field numbers
are those of the official definitions (`opentelemetry/proto/trace/v1/trace.proto`,
`common/v1/common.proto`, `resource/v1/resource.proto` and
`collector/trace/v1/trace_service.proto`); the tests decode what is written here with
the code opentelemetry-proto generates from them and compare it with its own
conversion.

Fields at their default value are left out, as protobuf's own encoders do, except
those a receiver must tell from absent: a message field (the status, the resource,
the scope, an attribute's value) and the variant of a value.
*/

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

/// The resource, written once when the exporter is given it: its attributes (as
/// `Resource`'s body) and its schema URL.
#[derive(Debug, Default, Clone)]
pub(crate) struct EncodedResource {
    body: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    pub(crate) fn new(resource: &Resource) -> EncodedResource {
        let mut body = Vec::new();
        for (key, value) in resource.iter() {
            write_key_value(&mut body, 1, key.as_str(), value);
        }
        EncodedResource {
            body,
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }
}

/// The `ExportTraceServiceRequest` for `batch`: one `ResourceSpans`, and a
/// `ScopeSpans` per instrumentation scope in the order they first appear. Fails only
/// if what was written is not the size worked out for it (a fault in this module:
/// the length prefixes would be wrong, and the request is not sent).
pub(crate) fn request(resource: &EncodedResource, batch: &[SpanData]) -> Result<Vec<u8>, String> {
    let mut scopes: Vec<(&InstrumentationScope, Vec<usize>)> = Vec::new();
    for (i, span) in batch.iter().enumerate() {
        match scopes
            .iter_mut()
            .find(|(scope, _)| same_scope(scope, &span.instrumentation_scope))
        {
            Some((_, spans)) => spans.push(i),
            None => scopes.push((&span.instrumentation_scope, vec![i])),
        }
    }
    let span_lens: Vec<usize> = batch.iter().map(span_len).collect();
    // Each scope's own size (`InstrumentationScope`) and its `ScopeSpans`'.
    let scope_lens: Vec<(usize, usize)> = scopes
        .iter()
        .map(|(scope, spans)| {
            let scope_len = scope_len(scope);
            let scope_spans_len = message_len(1, scope_len)
                + spans
                    .iter()
                    .map(|&i| message_len(2, span_lens[i]))
                    .sum::<usize>()
                + string_len(3, scope.schema_url().unwrap_or_default());
            (scope_len, scope_spans_len)
        })
        .collect();
    let resource_spans_len = message_len(1, resource.body.len())
        + scope_lens
            .iter()
            .map(|&(_, n)| message_len(2, n))
            .sum::<usize>()
        + string_len(3, &resource.schema_url);

    let total = message_len(1, resource_spans_len);
    let mut out = Vec::with_capacity(total);
    message(&mut out, 1, resource_spans_len);
    message(&mut out, 1, resource.body.len());
    out.extend_from_slice(&resource.body);
    for ((scope, spans), (scope_len, scope_spans_len)) in scopes.iter().zip(scope_lens) {
        message(&mut out, 2, scope_spans_len);
        message(&mut out, 1, scope_len);
        write_scope(&mut out, scope);
        for &i in spans {
            message(&mut out, 2, span_lens[i]);
            write_span(&mut out, &batch[i]);
        }
        string(&mut out, 3, scope.schema_url().unwrap_or_default());
    }
    string(&mut out, 3, &resource.schema_url);
    if out.len() != total {
        return Err(format!(
            "the OTLP request came to {} bytes where {total} were worked out",
            out.len()
        ));
    }
    Ok(out)
}

/// The partial success in an `ExportTraceServiceResponse`: the spans the collector
/// says it rejected and its message. `None` for an answer without one, or one that
/// is not protobuf.
pub(crate) fn partial_success(answer: &[u8]) -> Option<(i64, String)> {
    let mut partial = None;
    for (field, value) in Fields(answer) {
        if let (1, Wire::Len(body)) = (field, value?) {
            let (mut rejected, mut message) = (0, String::new());
            for (field, value) in Fields(body) {
                match (field, value?) {
                    // int64 travels as its two's complement.
                    (1, Wire::Varint(n)) => rejected = n as i64,
                    (2, Wire::Len(text)) => message = String::from_utf8_lossy(text).into_owned(),
                    _ => {}
                }
            }
            partial = Some((rejected, message));
        }
    }
    partial
}

// The messages, each as a size and a writer that agree field by field.

fn span_len(span: &SpanData) -> usize {
    let context = &span.span_context;
    let parent = parent_id(span);
    bytes_len(1, &context.trace_id().to_bytes())
        + bytes_len(2, &context.span_id().to_bytes())
        + string_len(3, &context.trace_state().header())
        + bytes_len(4, parent.as_ref().map_or(&[][..], |id| &id[..]))
        + string_len(5, &span.name)
        + varint_len_field(6, kind(&span.span_kind))
        + fixed64_len(7, nanos(span.start_time))
        + fixed64_len(8, nanos(span.end_time))
        + attributes_len(9, &span.attributes)
        + varint_len_field(10, u64::from(span.dropped_attributes_count))
        + span
            .events
            .iter()
            .map(|e| message_len(11, event_len(e)))
            .sum::<usize>()
        + varint_len_field(12, u64::from(span.events.dropped_count))
        + span
            .links
            .iter()
            .map(|l| message_len(13, link_len(l)))
            .sum::<usize>()
        + varint_len_field(14, u64::from(span.links.dropped_count))
        + message_len(15, status_len(&span.status))
        + fixed32_len(16, flags(context, span.parent_span_is_remote))
}

fn write_span(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    string(out, 3, &context.trace_state().header());
    if let Some(parent) = parent_id(span) {
        bytes(out, 4, &parent);
    }
    string(out, 5, &span.name);
    varint_field(out, 6, kind(&span.span_kind));
    fixed64(out, 7, nanos(span.start_time));
    fixed64(out, 8, nanos(span.end_time));
    write_attributes(out, 9, &span.attributes);
    varint_field(out, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        message(out, 11, event_len(event));
        write_event(out, event);
    }
    varint_field(out, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        message(out, 13, link_len(link));
        write_link(out, link);
    }
    varint_field(out, 14, u64::from(span.links.dropped_count));
    message(out, 15, status_len(&span.status));
    write_status(out, &span.status);
    fixed32(out, 16, flags(context, span.parent_span_is_remote));
}

fn event_len(event: &Event) -> usize {
    fixed64_len(1, nanos(event.timestamp))
        + string_len(2, &event.name)
        + attributes_len(3, &event.attributes)
        + varint_len_field(4, u64::from(event.dropped_attributes_count))
}

fn write_event(out: &mut Vec<u8>, event: &Event) {
    fixed64(out, 1, nanos(event.timestamp));
    string(out, 2, &event.name);
    write_attributes(out, 3, &event.attributes);
    varint_field(out, 4, u64::from(event.dropped_attributes_count));
}

fn link_len(link: &Link) -> usize {
    let context = &link.span_context;
    bytes_len(1, &context.trace_id().to_bytes())
        + bytes_len(2, &context.span_id().to_bytes())
        + string_len(3, &context.trace_state().header())
        + attributes_len(4, &link.attributes)
        + varint_len_field(5, u64::from(link.dropped_attributes_count))
        + fixed32_len(6, flags(context, context.is_remote()))
}

fn write_link(out: &mut Vec<u8>, link: &Link) {
    let context = &link.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    string(out, 3, &context.trace_state().header());
    write_attributes(out, 4, &link.attributes);
    varint_field(out, 5, u64::from(link.dropped_attributes_count));
    fixed32(out, 6, flags(context, context.is_remote()));
}

fn status_len(status: &Status) -> usize {
    let (code, description) = self::status(status);
    string_len(2, description) + varint_len_field(3, code)
}

fn write_status(out: &mut Vec<u8>, status: &Status) {
    let (code, description) = self::status(status);
    string(out, 2, description);
    varint_field(out, 3, code);
}

/// Whether `a` and `b` are one scope, as written: the same name, version, schema and
/// attributes in the same order. `InstrumentationScope`'s own `==` sorts two copies of
/// the attributes on every call, and brings 25 KB of sort code into the binary (and its
/// resident memory) for that; scopes whose attributes differ only in order are written
/// as two `ScopeSpans`, as OTLP allows.
fn same_scope(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    a.name() == b.name()
        && a.version() == b.version()
        && a.schema_url() == b.schema_url()
        && a.attributes().eq(b.attributes())
}

fn scope_len(scope: &InstrumentationScope) -> usize {
    string_len(1, scope.name())
        + string_len(2, scope.version().unwrap_or_default())
        + scope
            .attributes()
            .map(|kv| message_len(3, key_value_len(kv.key.as_str(), &kv.value)))
            .sum::<usize>()
}

fn write_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    string(out, 1, scope.name());
    string(out, 2, scope.version().unwrap_or_default());
    for kv in scope.attributes() {
        write_key_value(out, 3, kv.key.as_str(), &kv.value);
    }
}

fn attributes_len(field: u32, attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| message_len(field, key_value_len(kv.key.as_str(), &kv.value)))
        .sum()
}

fn write_attributes(out: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        write_key_value(out, field, kv.key.as_str(), &kv.value);
    }
}

/// A `KeyValue`: the key, and the value (always present).
fn key_value_len(key: &str, value: &Value) -> usize {
    string_len(1, key) + message_len(2, any_value_len(value))
}

fn write_key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    message(out, field, key_value_len(key, value));
    string(out, 1, key);
    message(out, 2, any_value_len(value));
    write_any_value(out, value);
}

/// What an `AnyValue` holds. The variant is always written, even at its default (an
/// empty string, `false`, 0), since it says which variant the value is.
enum Any<'a> {
    String(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(&'a Array),
}

fn any_of(value: &Value) -> Any<'_> {
    match value {
        Value::Bool(b) => Any::Bool(*b),
        Value::I64(i) => Any::Int(*i),
        Value::F64(f) => Any::Double(*f),
        Value::String(s) => Any::String(Cow::Borrowed(s.as_str())),
        Value::Array(a) => Any::Array(a),
        // A kind of value a later opentelemetry adds goes as its text rather than not
        // at all (opentelemetry-proto's conversion would panic on it).
        other => Any::String(Cow::Owned(other.to_string())),
    }
}

fn any_value_len(value: &Value) -> usize {
    any_len(&any_of(value))
}

fn write_any_value(out: &mut Vec<u8>, value: &Value) {
    write_any(out, &any_of(value));
}

fn any_len(any: &Any<'_>) -> usize {
    match any {
        Any::String(s) => message_len(1, s.len()),
        Any::Bool(_) => tag_len(2) + 1,
        Any::Int(i) => tag_len(3) + varint_len(*i as u64),
        Any::Double(_) => tag_len(4) + 8,
        Any::Array(a) => message_len(5, array_len(a)),
    }
}

fn write_any(out: &mut Vec<u8>, any: &Any<'_>) {
    match any {
        Any::String(s) => {
            message(out, 1, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Any::Bool(b) => {
            tag(out, 2, VARINT);
            varint(out, u64::from(*b));
        }
        Any::Int(i) => {
            tag(out, 3, VARINT);
            // int64 travels as its two's complement.
            varint(out, *i as u64);
        }
        Any::Double(f) => {
            tag(out, 4, I64);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Any::Array(a) => {
            message(out, 5, array_len(a));
            for_each_item(a, |item| {
                message(out, 1, any_len(&item));
                write_any(out, &item);
            });
        }
    }
}

/// An `ArrayValue`: each item an `AnyValue`.
fn array_len(array: &Array) -> usize {
    let mut len = 0;
    for_each_item(array, |item| len += message_len(1, any_len(&item)));
    len
}

fn for_each_item(array: &Array, mut f: impl FnMut(Any<'_>)) {
    match array {
        Array::Bool(v) => v.iter().for_each(|b| f(Any::Bool(*b))),
        Array::I64(v) => v.iter().for_each(|i| f(Any::Int(*i))),
        Array::F64(v) => v.iter().for_each(|x| f(Any::Double(*x))),
        Array::String(v) => v
            .iter()
            .for_each(|s| f(Any::String(Cow::Borrowed(s.as_str())))),
        other => f(Any::String(Cow::Owned(other.to_string()))),
    }
}

// The span's own values, as the conventions of OTLP write them.

fn parent_id(span: &SpanData) -> Option<[u8; 8]> {
    (span.parent_span_id != SpanId::INVALID).then(|| span.parent_span_id.to_bytes())
}

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// The status code (unset 0, ok 1, error 2) and an error's description.
fn status(status: &Status) -> (u64, &str) {
    match status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error { description } => (2, description),
    }
}

/// The W3C trace flags, and whether the parent (or the link) is remote, as OTLP's
/// `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` (0x100) and `..._IS_REMOTE_MASK` (0x200).
fn flags(context: &SpanContext, remote: bool) -> u32 {
    u32::from(context.trace_flags().to_u8()) | 0x100 | if remote { 0x200 } else { 0 }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

// Protobuf's wire format.

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn tag_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

/// A message field's tag and length; its body follows.
fn message(out: &mut Vec<u8>, field: u32, len: usize) {
    tag(out, field, LEN);
    varint(out, len as u64);
}

fn message_len(field: u32, len: usize) -> usize {
    tag_len(field) + varint_len(len as u64) + len
}

fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        message(out, field, value.len());
        out.extend_from_slice(value);
    }
}

fn bytes_len(field: u32, value: &[u8]) -> usize {
    if value.is_empty() {
        0
    } else {
        message_len(field, value.len())
    }
}

fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes(out, field, value.as_bytes());
}

fn string_len(field: u32, value: &str) -> usize {
    bytes_len(field, value.as_bytes())
}

fn varint_field(out: &mut Vec<u8>, field: u32, n: u64) {
    if n != 0 {
        tag(out, field, VARINT);
        varint(out, n);
    }
}

fn varint_len_field(field: u32, n: u64) -> usize {
    if n == 0 {
        0
    } else {
        tag_len(field) + varint_len(n)
    }
}

fn fixed64(out: &mut Vec<u8>, field: u32, n: u64) {
    if n != 0 {
        tag(out, field, I64);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

fn fixed64_len(field: u32, n: u64) -> usize {
    if n == 0 { 0 } else { tag_len(field) + 8 }
}

fn fixed32(out: &mut Vec<u8>, field: u32, n: u32) {
    if n != 0 {
        tag(out, field, I32);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

fn fixed32_len(field: u32, n: u32) -> usize {
    if n == 0 { 0 } else { tag_len(field) + 4 }
}

/// A field's value as read: a varint, a length-delimited body, or a fixed-size
/// value (skipped).
enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Fixed,
}

/// The fields of a message's bytes, in order: each its number and its value, the
/// value `None` where it cannot be read (and nothing after it is read).
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, Option<Wire<'a>>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let key = self.read_varint();
        let Some(key) = key else {
            self.0 = &[];
            return Some((0, None));
        };
        let value = match key & 7 {
            0 => self.read_varint().map(Wire::Varint),
            1 => self.skip(8),
            2 => self
                .read_varint()
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| {
                    let (body, rest) = (self.0.get(..n)?, self.0.get(n..)?);
                    self.0 = rest;
                    Some(Wire::Len(body))
                }),
            5 => self.skip(4),
            _ => None,
        };
        if value.is_none() {
            self.0 = &[];
        }
        Some((key >> 3, value))
    }
}

impl<'a> Fields<'a> {
    fn read_varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for (i, byte) in self.0.iter().enumerate().take(10) {
            n |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some(n);
            }
        }
        None
    }

    fn skip(&mut self, n: usize) -> Option<Wire<'a>> {
        self.0 = self.0.get(n..)?;
        Some(Wire::Fixed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{Event, Link, TraceFlags, TraceId, TraceState};
    use opentelemetry::{Array, StringValue};
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;

    fn context(trace: u128, span: u64, remote: bool, state: &str) -> SpanContext {
        let state = state.parse::<TraceState>().unwrap();
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            state,
        )
    }

    use crate::bench::layer_span;

    /// Spans with every part a span can have, in two scopes.
    pub(crate) fn batch() -> Vec<SpanData> {
        let other_scope = InstrumentationScope::builder("tracing-opentelemetry")
            .with_version("0.34.0")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("scope.kind", "bridge")])
            .build();
        let mut full = layer_span(2);
        full.parent_span_id = SpanId::from(99);
        full.parent_span_is_remote = true;
        full.span_context = context(5, 6, false, "vendor=a,other=b");
        full.attributes.extend([
            KeyValue::new("ok", true),
            KeyValue::new("off", false),
            KeyValue::new("ratio", 0.25),
            KeyValue::new("zero", 0.0),
            KeyValue::new("negative", -3_i64),
            KeyValue::new("empty", ""),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![1, -1, i64::MAX]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![1.5, -0.0]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec![StringValue::from("a"), "".into()])),
            ),
            KeyValue::new("none", Value::Array(Array::I64(Vec::new()))),
        ]);
        full.dropped_attributes_count = 4;
        full.events.events = vec![
            Event::new("retry", full.start_time, vec![KeyValue::new("n", 2_i64)], 1),
            Event::with_name("bare"),
        ];
        full.events.dropped_count = 3;
        full.links.links = vec![Link::new(
            context(77, 78, true, "k=v"),
            vec![KeyValue::new("why", "batch")],
            2,
        )];
        full.links.dropped_count = 1;
        full.status = Status::error("upstream timed out");
        full.instrumentation_scope = other_scope.clone();
        let mut ok = layer_span(3);
        ok.status = Status::Ok;
        ok.span_kind = SpanKind::Client;
        ok.instrumentation_scope = other_scope;
        let mut local = layer_span(4);
        local.parent_span_id = SpanId::from(2);
        local.span_kind = SpanKind::Internal;
        local.name = Cow::Borrowed("");
        vec![layer_span(1), full, ok, local, layer_span(5)]
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_service_name("checkout")
            .with_attributes([
                KeyValue::new("process.pid", 4242_i64),
                KeyValue::new("host.arch", "amd64"),
            ])
            .with_schema_url([], "https://opentelemetry.io/schemas/1.30.0")
            .build()
    }

    /// What opentelemetry-proto's own conversion makes of `batch`.
    fn converted(resource: &Resource, batch: &[SpanData]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                batch.to_vec(),
                &ResourceAttributesWithSchema::from(resource),
            ),
        }
    }

    fn written(resource: &Resource, batch: &[SpanData]) -> ExportTraceServiceRequest {
        let body = request(&EncodedResource::new(resource), batch).unwrap();
        ExportTraceServiceRequest::decode(body.as_slice()).unwrap()
    }

    #[test]
    fn spans_of_one_scope_go_in_one_scope_spans() {
        let scope = |attributes: [(&'static str, i64); 2]| {
            InstrumentationScope::builder("lib")
                .with_version("1.0")
                .with_attributes(attributes.map(|(k, v)| KeyValue::new(k, v)))
                .build()
        };
        let mut spans: Vec<SpanData> = (1..=4).map(layer_span).collect();
        spans[0].instrumentation_scope = scope([("a", 1), ("b", 2)]);
        spans[1].instrumentation_scope = scope([("a", 1), ("b", 3)]);
        spans[2].instrumentation_scope = scope([("a", 1), ("b", 2)]);
        // The same attributes in another order: written as a scope of its own.
        spans[3].instrumentation_scope = scope([("b", 2), ("a", 1)]);
        let request = written(&resource(), &spans);
        let grouped: Vec<Vec<u64>> = request.resource_spans[0]
            .scope_spans
            .iter()
            .map(|scope| {
                let id = |s: &opentelemetry_proto::tonic::trace::v1::Span| {
                    u64::from_be_bytes(s.span_id.as_slice().try_into().unwrap())
                };
                scope.spans.iter().map(id).collect()
            })
            .collect();
        let ids: Vec<u64> = spans
            .iter()
            .map(|s| u64::from_be_bytes(s.span_context.span_id().to_bytes()))
            .collect();
        assert_eq!(grouped, [vec![ids[0], ids[2]], vec![ids[1]], vec![ids[3]]]);
    }

    #[test]
    fn a_batch_reads_back_as_opentelemetry_protos_own_conversion() {
        let resource = resource();
        let batch = batch();
        assert_eq!(written(&resource, &batch), converted(&resource, &batch));
        let empty = Resource::builder_empty().build();
        assert_eq!(written(&empty, &[]), converted(&empty, &[]));
        assert_eq!(written(&empty, &batch), converted(&empty, &batch));
    }

    /// The body is exactly as long as prost's encoding of the same request (the
    /// fields come in another order, which sizes do not depend on): the same fields
    /// are left out at their defaults, and every length prefix is the right size.
    #[test]
    fn the_size_is_prosts_for_the_same_request() {
        let resource = resource();
        let batch = batch();
        let body = request(&EncodedResource::new(&resource), &batch).unwrap();
        assert_eq!(body.len(), converted(&resource, &batch).encoded_len());
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::I64),
            (-1e300..1e300_f64).prop_map(Value::F64),
            ".{0,40}".prop_map(|s| Value::String(s.into())),
            proptest::collection::vec(any::<bool>(), 0..4)
                .prop_map(|v| Value::Array(Array::Bool(v))),
            proptest::collection::vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
            proptest::collection::vec(-1e300..1e300_f64, 0..4)
                .prop_map(|v| Value::Array(Array::F64(v))),
            proptest::collection::vec(".{0,8}", 0..4).prop_map(|v| {
                Value::Array(Array::String(
                    v.into_iter().map(StringValue::from).collect(),
                ))
            }),
        ]
    }

    proptest! {
        #[test]
        fn any_span_reads_back_as_opentelemetry_protos_own_conversion(
            name in ".{0,60}",
            attributes in proptest::collection::vec(("[a-z.]{0,20}", value()), 0..12),
            trace in 1..u128::MAX,
            span in 1..u64::MAX,
            parent in any::<u64>(),
            remote in any::<bool>(),
            dropped in any::<u32>(),
            micros in any::<u32>(),
            error in proptest::option::of(".{0,30}"),
            state in prop_oneof![Just(""), Just("vendor=a"), Just("a=1,b=2")],
            events in proptest::collection::vec(
                (".{0,10}", proptest::collection::vec(("[a-z]{1,8}", value()), 0..3), any::<u32>()),
                0..3,
            ),
            links in proptest::collection::vec(
                (1..u128::MAX, 1..u64::MAX, any::<bool>(), proptest::collection::vec(("[a-z]{1,8}", value()), 0..3)),
                0..3,
            ),
            dropped_events in any::<u32>(),
            dropped_links in any::<u32>(),
        ) {
            let mut data = layer_span(1);
            data.name = name.into();
            data.attributes = attributes.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
            data.span_context = context(trace, span, false, state);
            data.parent_span_id = SpanId::from(parent);
            data.parent_span_is_remote = remote;
            data.dropped_attributes_count = dropped;
            data.end_time = data.start_time + Duration::from_micros(u64::from(micros));
            data.status = error.map_or(Status::Unset, Status::error);
            let pairs = |kvs: Vec<(String, Value)>| kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
            data.events.events = events
                .into_iter()
                .map(|(name, attributes, dropped)| {
                    Event::new(name, data.start_time, pairs(attributes), dropped)
                })
                .collect();
            data.events.dropped_count = dropped_events;
            data.links.links = links
                .into_iter()
                .map(|(trace, span, remote, attributes)| {
                    Link::new(context(trace, span, remote, state), pairs(attributes), 0)
                })
                .collect();
            data.links.dropped_count = dropped_links;
            let resource = resource();
            let batch = [data];
            prop_assert_eq!(written(&resource, &batch), converted(&resource, &batch));
        }
    }

    #[test]
    fn the_partial_success_is_read_and_anything_else_is_not() {
        let answer = |partial| {
            ExportTraceServiceResponse {
                partial_success: partial,
            }
            .encode_to_vec()
        };
        let partial = |rejected_spans, message: &str| {
            Some(ExportTracePartialSuccess {
                rejected_spans,
                error_message: message.to_owned(),
            })
        };
        assert_eq!(
            partial_success(&answer(partial(3, "over quota"))),
            Some((3, "over quota".to_owned()))
        );
        assert_eq!(
            partial_success(&answer(partial(-1, ""))),
            Some((-1, String::new()))
        );
        assert_eq!(
            partial_success(&answer(partial(0, ""))),
            Some((0, String::new()))
        );
        assert_eq!(partial_success(&answer(None)), None);
        assert_eq!(partial_success(b""), None);
        assert_eq!(partial_success(b"{\"partialSuccess\":{}}"), None);
        assert_eq!(partial_success(&[0x0a, 0x05, 0x08]), None, "cut short");
        // Fields it does not know are passed over.
        let mut unknown = vec![0x10, 0x01, 0x1d, 0, 0, 0, 0];
        unknown.extend(answer(partial(2, "x")));
        assert_eq!(partial_success(&unknown), Some((2, "x".to_owned())));
    }
}

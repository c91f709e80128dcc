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


This file writes the messages; `wire.rs` holds protobuf's wire format they are
written in.
*/

#[cfg(test)]
pub(crate) mod tests;
mod wire;

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use wire::{
    Fields, I64, VARINT, Wire, bytes, bytes_len, fixed32, fixed32_len, fixed64, fixed64_len,
    message, message_len, string, string_len, tag, tag_len, varint, varint_field, varint_len,
    varint_len_field,
};

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

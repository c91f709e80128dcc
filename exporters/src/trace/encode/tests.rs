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
        proptest::collection::vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(Array::Bool(v))),
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

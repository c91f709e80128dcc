//! What writing an OTLP/HTTP request for a batch of 512 spans costs, side by side:
//! coldstart's encoder, which writes the protobuf straight from the SDK's `SpanData`,
//! and what opentelemetry-otlp's exporter does (opentelemetry-proto's conversion of
//! each span into its messages, then prost's encoding). The spans are the ones
//! `HttpTelemetryLayer` makes: a server span named `GET /users/{id}` with four
//! attributes. Dropping the batch alone is measured too: the conversion consumes it.
//! So is gzip of coldstart's request (`OTEL_EXPORTER_OTLP_COMPRESSION=gzip`, flate2's
//! Rust backend, as the exporter runs it) at flate2's default level and at the
//! exporter's (`OTLP_GZIP_LEVEL`, its fastest).
//!
//! `cargo bench -p coldstart-benches --bench otlp_encode`

use std::hint::black_box;

use coldstart_exporters::bench::{OTLP_GZIP_LEVEL, layer_span, otlp_request};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;

const BATCH: usize = 512;

fn batch() -> Vec<SpanData> {
    (0..BATCH as u64).map(layer_span).collect()
}

fn encode(c: &mut Criterion) {
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name("bench")
        .build();
    let plain = resource.clone();
    let resource = ResourceAttributesWithSchema::from(&resource);
    c.bench_function(
        "opentelemetry-proto conversion and prost encoding, 512 spans",
        |b| {
            b.iter_batched(
                batch,
                |spans| {
                    let request = ExportTraceServiceRequest {
                        resource_spans: group_spans_by_resource_and_scope(spans, &resource),
                    };
                    black_box(request.encode_to_vec())
                },
                BatchSize::LargeInput,
            );
        },
    );
    let spans = batch();
    c.bench_function("coldstart's encoder, 512 spans", |b| {
        b.iter(|| black_box(otlp_request(&plain, &spans).unwrap_or_default()));
    });
    c.bench_function("dropping the batch, 512 spans", |b| {
        b.iter_batched(batch, drop, BatchSize::LargeInput);
    });
    let request = otlp_request(&plain, &spans).expect("the request for the batch");
    // As the exporter compresses (`trace::otlp::gzip`): its buffer, at a given level.
    let gzip = |level| {
        use std::io::Write as _;
        let compressed = Vec::with_capacity(request.len() / 2);
        let mut encoder = flate2::write::GzEncoder::new(compressed, level);
        encoder.write_all(&request).expect("gzip into memory");
        encoder.finish().expect("gzip into memory")
    };
    for (name, level) in [
        ("flate2's default", flate2::Compression::default()),
        ("the exporter's", flate2::Compression::new(OTLP_GZIP_LEVEL)),
    ] {
        eprintln!(
            "gzip at {name} level: {} bytes of request, {} compressed",
            request.len(),
            gzip(level).len()
        );
        c.bench_function(&format!("gzip at {name} level, 512 spans"), |b| {
            b.iter(|| black_box(gzip(level)));
        });
    }
}

criterion_group!(benches, encode);
criterion_main!(benches);

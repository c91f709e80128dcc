//! What `/metrics` costs to render, small and large, and what rendering on a thread of
//! its own adds (`coldstart_runtime::task::off_runtime`): the figures behind the size
//! past which the listener renders off the runtime's threads (64 KiB). And a registry
//! of many names, where the rendering's cost must grow with their number, not its
//! square.
//!
//! `cargo bench -p coldstart-benches --bench render`

use std::hint::black_box;

use coldstart_bootstrap::Env;
use coldstart_exporters::Config;
use coldstart_exporters::metrics::render;
use criterion::{Criterion, criterion_group};

fn rendering(c: &mut Criterion) {
    let (config, errors) = Config::from(&Env::fixed([
        ("COLDSTART_METRICS_ADDR", "off"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ]));
    assert!(errors.is_empty(), "{errors:?}");
    let _telemetry = coldstart_exporters::install_with(config, None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");

    let mut group = c.benchmark_group("render");
    // A small service: 100 counter series and 5 histograms.
    for i in 0..100 {
        metrics::counter!("small_requests_total", "route" => format!("/r/{i}")).increment(1);
    }
    for i in 0..5 {
        metrics::histogram!("small_latency_seconds", "route" => format!("/r/{i}")).record(0.01);
    }
    let small = render().len();
    group.bench_function(format!("small registry ({small} bytes)"), |b| {
        b.iter(|| black_box(render()))
    });
    group.bench_function("a thread of its own, for nothing", |b| {
        b.iter(|| {
            runtime.block_on(coldstart_runtime::task::off_runtime("bench", || {
                black_box(0)
            }))
        })
    });
    // A large one: 20 000 counter series and 500 histograms.
    for name in 0..20 {
        for i in 0..1000 {
            metrics::counter!(format!("requests_{name}_total"), "route" => format!("/r/{i}"))
                .increment(1);
        }
    }
    for i in 0..500 {
        metrics::histogram!("latency_seconds", "route" => format!("/r/{i}")).record(0.01);
    }
    let large = render().len();
    group.sample_size(20);
    group.bench_function(format!("large registry ({large} bytes)"), |b| {
        b.iter(|| black_box(render()))
    });
    // The large one and 5 000 names more, one series each: families were found by
    // searching a list, each name's description too.
    for name in 0..5000 {
        metrics::counter!(format!("jobs_{name}_total")).increment(1);
    }
    let named = render().len();
    group.bench_function(format!("and 5000 names more ({named} bytes)"), |b| {
        b.iter(|| black_box(render()))
    });
    group.finish();
}

criterion_group!(benches, rendering);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}

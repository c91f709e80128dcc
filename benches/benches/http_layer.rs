//! The per-request cost of `HttpTelemetryLayer`, side by side with the same service
//! without it: metrics recorded, a sampled server span started and ended, and the
//! span exported for real (OTLP/HTTP to a sink in this process, on a runtime thread,
//! as in a service after its first response) unless the settings below say otherwise.
//!
//! `cargo bench -p coldstart-benches --bench http_layer`
//!
//! The sampler is `parentbased_always_on` (every span sampled and exported) unless
//! `OTEL_TRACES_SAMPLER` (and `OTEL_TRACES_SAMPLER_ARG`) say otherwise, e.g.
//! `OTEL_TRACES_SAMPLER=parentbased_coldstart_dynamic` for the design's sampler, which
//! at this rate samples few: the path of a span that is not sampled.
//! `OTEL_TRACES_EXPORTER=none` measures spans that are made and not exported,
//! `OTEL_SDK_DISABLED=true` the layer with tracing off.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use coldstart_bootstrap::Env;
use coldstart_exporters::Config;
use coldstart_exporters::http::HttpTelemetryLayer;
use criterion::{Criterion, criterion_group};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

/// A handler that answers at once.
#[derive(Clone, Copy)]
struct Hello;

impl Service<Request<()>> for Hello {
    type Response = Response<&'static str>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        ready(Ok(Response::new("hello")))
    }
}

/// Calls `service` with a fresh request and polls the answer to completion.
fn serve<S, B>(service: &mut S, traceparent: bool) -> Response<B>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let mut req = Request::get("/users/42");
    if traceparent {
        req = req.header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
    }
    let req = req.body(()).unwrap_or_default();
    let mut future = pin!(service.call(req));
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) {
            return response;
        }
    }
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build the runtime: {e}"));
    runtime.block_on(async {
        let mut vars = vec![("COLDSTART_METRICS_ADDR".to_owned(), "off".to_owned())];
        for key in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_TRACES_SAMPLER",
            "OTEL_TRACES_SAMPLER_ARG",
            "OTEL_TRACES_EXPORTER",
            "OTEL_SDK_DISABLED",
        ] {
            if let Ok(value) = std::env::var(key) {
                vars.push((key.to_owned(), value));
            }
        }
        let (config, errors) = Config::from(&Env::fixed(vars));
        assert!(errors.is_empty(), "{errors:?}");
        coldstart_exporters::install_with(config, None).start_after_first_response();
        coldstart_runtime::first_request_done();
    });

    let mut group = c.benchmark_group("http_layer");
    group.bench_function("bare service", |b| {
        let mut service = Hello;
        b.iter(|| black_box(serve(&mut service, false)))
    });
    let route = |path: &str| path.starts_with("/users/").then_some("/users/{id}");
    group.bench_function("HttpTelemetryLayer (metrics, sampled span)", |b| {
        let mut service = HttpTelemetryLayer::new().route(route).layer(Hello);
        b.iter(|| black_box(serve(&mut service, false)))
    });
    group.bench_function("HttpTelemetryLayer, request with traceparent", |b| {
        let mut service = HttpTelemetryLayer::new().route(route).layer(Hello);
        b.iter(|| black_box(serve(&mut service, true)))
    });
    group.finish();
    let dropped: u64 = coldstart_exporters::problem::Dropped::ALL
        .iter()
        .map(|d| coldstart_exporters::problem::dropped(*d))
        .sum();
    eprintln!("spans and metrics dropped during the bench: {dropped}");
    drop(runtime);
}

criterion_group!(benches, layer);

fn main() {
    // Before any thread starts: the exporter reads its endpoint from the environment.
    let sink = coldstart_benches::otlp_sink().unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: no other thread reads the environment yet (the sink's thread only
    // accepts connections).
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", sink) };
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}

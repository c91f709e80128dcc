//! A scrape shows what is true when it is taken: a custom collector is sampled at each
//! render (it may register another, or panic), and `http_requests_in_flight` counts the requests being answered, going
//! down for one that is answered and for one that is cancelled (which is counted with
//! status 499). One test: the
//! recorder is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use coldstart_bootstrap::Env;
use coldstart_exporters::config::Config;
use coldstart_exporters::http::HttpTelemetryLayer;
use coldstart_exporters::metrics::{register_collector, render};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

/// Answers `/hold` never, anything else at once.
#[derive(Clone, Copy)]
struct Handler;

type Answer = Pin<Box<dyn Future<Output = Result<Response<&'static str>, Infallible>> + Send>>;

impl Service<Request<()>> for Handler {
    type Response = Response<&'static str>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Answer {
        if req.uri().path() == "/hold" {
            Box::pin(std::future::pending())
        } else {
            let answered: Ready<_> = ready(Ok(Response::new("ok")));
            Box::pin(answered)
        }
    }
}

/// The value of the unlabelled sample `name` in a scrape.
fn sample(name: &str) -> Option<f64> {
    render().lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_scrape_samples_collectors_and_requests_in_flight_when_it_is_taken() {
    let env = Env::fixed([
        ("COLDSTART_METRICS_ADDR", "off"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ]);
    let (config, errors) = Config::from(&env);
    assert!(errors.is_empty(), "{errors:?}");
    // A request that came before the recorder was installed, and leaves after.
    let mut early_service = HttpTelemetryLayer::new()
        .route(|_| Some("/early"))
        .layer(Handler);
    let mut early = early_service.call(Request::get("/hold").body(()).unwrap());
    assert!(poll_once(&mut early).is_pending());
    let _telemetry = coldstart_exporters::install_with(config, None);
    drop(early);
    // It left the gauge it entered, the one of no recorder: coldstart's has no count
    // from it (it had -1, for good, and the count of requests in flight one short).
    assert_eq!(sample("http_requests_in_flight"), None, "{}", render());

    let depth = Arc::new(AtomicU64::new(3));
    let sampled = depth.clone();
    register_collector(move || {
        metrics::gauge!("scrape_test_queue_depth").set(sampled.load(Ordering::SeqCst) as f64);
    });
    assert_eq!(sample("scrape_test_queue_depth"), Some(3.0));
    depth.store(5, Ordering::SeqCst);
    assert_eq!(
        sample("scrape_test_queue_depth"),
        Some(5.0),
        "sampled again"
    );

    // A collector may register another (this waited on itself for ever), and one
    // that panics leaves the scrape whole.
    register_collector(|| {
        register_collector(|| metrics::gauge!("scrape_test_registered_late").set(1.0));
    });
    let panics = Arc::new(AtomicU64::new(0));
    let counted = panics.clone();
    register_collector(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        panic!("a collector's own bug")
    });
    assert_eq!(sample("scrape_test_queue_depth"), Some(5.0));
    assert_eq!(sample("scrape_test_registered_late"), Some(1.0));
    // One that panicked is not run again: its panic would be printed at every scrape.
    assert_eq!(panics.load(Ordering::SeqCst), 1);

    // A program's metric named like one of coldstart's own does not make a second
    // family of that name.
    metrics::gauge!("process_threads").set(9999.0);
    let scrape = render();
    assert_eq!(
        scrape.matches("# TYPE process_threads ").count(),
        1,
        "{scrape}"
    );
    assert!(!scrape.contains("process_threads 9999"), "{scrape}");

    let mut service = HttpTelemetryLayer::new().layer(Handler);
    let request = |path: &str| Request::get(path).body(()).unwrap();
    let mut held = service.call(request("/hold"));
    let mut cancelled = service.call(request("/hold"));
    assert!(poll_once(&mut held).is_pending() && poll_once(&mut cancelled).is_pending());
    assert_eq!(sample("http_requests_in_flight"), Some(2.0));

    drop(cancelled);
    assert_eq!(
        sample("http_requests_in_flight"),
        Some(1.0),
        "a cancelled request"
    );
    // ... and counted, as nginx's "client closed request", with its time until then.
    let cancelled_series = r#"{method="GET",route="unmatched",status="499"}"#;
    assert_eq!(
        sample(&format!("http_requests_total{cancelled_series}")),
        Some(1.0),
        "{}",
        render()
    );
    assert_eq!(
        sample(&format!(
            "http_request_duration_seconds_count{cancelled_series}"
        )),
        Some(1.0)
    );

    let mut answered = service.call(request("/"));
    assert_eq!(sample("http_requests_in_flight"), Some(2.0));
    assert!(poll_once(&mut answered).is_ready());
    drop(answered);
    assert_eq!(
        sample("http_requests_in_flight"),
        Some(1.0),
        "an answered request"
    );

    drop(held);
    assert_eq!(sample("http_requests_in_flight"), Some(0.0));
    assert_eq!(
        sample(&format!("http_requests_total{cancelled_series}")),
        Some(2.0)
    );
    assert_eq!(
        sample(r#"http_requests_total{method="GET",route="unmatched",status="200"}"#),
        Some(1.0),
        "the answered one is counted once, as answered"
    );
}

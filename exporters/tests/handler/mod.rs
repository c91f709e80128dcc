//! A service that answers by path, for the HTTP layer's tests.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use coldstart_exporters::http::Route;
use http::{Request, Response, StatusCode};
use opentelemetry::trace::Status;
use tower_service::Service;

/// Answers by path: `/down` 503 (after saying why on the span), `/missing` 404, `/fail` with `Err`, `/panic` by
/// panicking in its future, `/panic-in-call` by panicking before it has one,
/// `/routed/...` with a `Route` on the response, `/hang` never, else 200.
#[derive(Clone, Copy)]
pub(crate) struct Handler;

type Answer = Pin<Box<dyn Future<Output = Result<Response<String>, &'static str>> + Send>>;

impl Service<Request<()>> for Handler {
    type Response = Response<String>;
    type Error = &'static str;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), &'static str>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Answer {
        let path = req.uri().path().to_owned();
        if path == "/panic-in-call" {
            panic!("a bug before the handler's future");
        }
        if path == "/down" {
            // The handler says why on the server span; the layer's 5xx keeps it.
            use opentelemetry::trace::TraceContextExt as _;
            opentelemetry::Context::current()
                .span()
                .set_status(Status::error("db down"));
        }
        Box::pin(async move {
            let mut response = Response::new(String::new());
            match path.as_str() {
                "/down" => *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE,
                "/missing" => *response.status_mut() = StatusCode::NOT_FOUND,
                "/fail" => return Err("no database"),
                "/panic" => panic!("a handler's own bug"),
                "/hang" => std::future::pending::<()>().await,
                p if p.starts_with("/routed/") => {
                    response.extensions_mut().insert(Route("/routed/{n}"));
                }
                _ => {}
            }
            Ok(response)
        })
    }
}

/*!
HTTP server telemetry as a tower middleware (hyper, axum, tonic): per request, the
`http_requests_total` counter, the `http_request_duration_seconds` histogram and the
`http_requests_in_flight` gauge (feature `metrics`), and a server span that continues
the caller's W3C trace context (feature `tracing`).

Labels are the method, the route template and the status, never the raw path: the
number of series stays bounded whatever clients send. The route template comes from,
in order: a [`Route`] extension the router put on the request, axum's `MatchedPath`
(feature `axum`), the function given to [`HttpTelemetryLayer::route`], else
`unmatched`. Methods outside the standard set are labelled `_OTHER`.

The span's context is put in the request's extensions (`opentelemetry::Context`) and
is the current context while the inner service runs, so handlers create child spans
and propagate it without extra code.

On a gRPC server (tonic) every call answers HTTP 200; its code comes in `grpc-status`,
in the headers of an answer without messages (tonic's answer to a handler's
`Err(Status)`), else in the trailers after the messages. The span gets
`rpc.grpc.status_code` from either, and an error status for the codes the
OpenTelemetry conventions count as the server's; a call whose code comes in the
trailers keeps its span open until they pass through the response body. The metrics
are recorded when the answer's head is ready, labelled with the HTTP status.

Place it inside [`FirstResponseLayer`](coldstart_runtime::first_response) so that
the first request's telemetry is recorded before that response is marked done.
*/

mod body;
mod future;
#[cfg(feature = "metrics")]
mod handles;
mod layer;

use std::borrow::Cow;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Method, Request};
use tower_service::Service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::HttpTelemetryLayer;

/// The route template of a request, for routers that know it (`/users/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route(pub &'static str);

/// Maps a request path to its route template.
pub type RouteFn = fn(&str) -> Option<&'static str>;

/// The middleware; see the module docs.
#[derive(Debug, Clone)]
pub struct HttpTelemetry<S> {
    inner: S,
    route: Option<RouteFn>,
}

impl<S> HttpTelemetry<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, route: Option<RouteFn>) -> Self {
        HttpTelemetry { inner, route }
    }
}

/// The method label: one of the standard methods, or `_OTHER`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

fn route_of<B>(req: &Request<B>, route: Option<RouteFn>) -> Cow<'static, str> {
    if let Some(Route(r)) = req.extensions().get::<Route>() {
        return Cow::Borrowed(r);
    }
    #[cfg(feature = "axum")]
    if let Some(m) = req.extensions().get::<axum::extract::MatchedPath>() {
        return Cow::Owned(m.as_str().to_owned());
    }
    match route.and_then(|f| f(req.uri().path())) {
        Some(r) => Cow::Borrowed(r),
        None => Cow::Borrowed("unmatched"),
    }
}

impl<S, B, ResBody> Service<Request<B>> for HttpTelemetry<S>
where
    S: Service<Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[cfg_attr(not(feature = "tracing"), allow(unused_mut))]
    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let method = method_label(req.method());
        let route = route_of(&req, self.route);
        #[cfg(feature = "tracing")]
        let cx = future::start_span(&mut req, method, &route);
        // The handler's synchronous part sees the server span as current too.
        #[cfg(feature = "tracing")]
        let current = cx.clone().attach();
        let inner = self.inner.call(req);
        #[cfg(feature = "tracing")]
        drop(current);
        let record = future::Record::new(
            start,
            method,
            route,
            #[cfg(feature = "tracing")]
            cx,
        );
        ResponseFuture::new(inner, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap_or(Method::GET)),
            "_OTHER"
        );
        let req = Request::get("/users/42").body(()).unwrap_or_default();
        assert_eq!(route_of(&req, None), "unmatched");
        let users: RouteFn = |p| p.starts_with("/users/").then_some("/users/{id}");
        assert_eq!(route_of(&req, Some(users)), "/users/{id}");
        let mut req = req;
        req.extensions_mut().insert(Route("/u/{id}"));
        assert_eq!(route_of(&req, Some(users)), "/u/{id}");
    }
}

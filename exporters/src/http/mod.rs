/*!
HTTP server telemetry as a tower middleware (hyper, axum, tonic): per request, the
`http_requests_total` counter, the `http_request_duration_seconds` histogram and the
`http_requests_in_flight` gauge (feature `metrics`), and a server span that continues
the caller's W3C trace context (feature `tracing`).

Labels are the method, the route template and the status, never the raw path: the
number of series stays bounded whatever clients send. The route template comes from,
in order: a [`Route`] extension on the response (a router inside the layer says which
route answered), a [`Route`] extension on the request (a router or layer outside it
said), axum's `MatchedPath` (feature `axum`; add the layer with `Router::layer`, so
that it runs after axum matched the route), the function given to
[`HttpTelemetryLayer::route`], else the label is `unmatched`. axum gives no
`MatchedPath` to a service nested with `Router::nest_service`: route it with
`route_service("/assets/{*path}", ..)`, or name its routes with `.route`. Under a
router nested in another, `url.path` is the whole path (axum's `OriginalUri`). Methods outside the
standard set (or outside `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`, which replaces it)
are labelled `_OTHER`.

The span follows the OpenTelemetry HTTP server conventions: it is named
`{method} {route}`, or `{method}` alone when no route is known (then it has no
`http.route`), with `HTTP` for a method labelled `_OTHER` (whose name goes in
`http.request.method_original`). It has `http.request.method`, `url.path`, `url.query`
when there is one (the values of `AWSAccessKeyId`, `Signature`, `sig` and
`X-Goog-Signature` replaced by `REDACTED`), `url.scheme` (as the request says it, else
`http`, or what [`HttpTelemetryLayer::scheme`] sets: `https` behind TLS),
`server.address` and `server.port` (from the request's `:authority` or `Host`; the
scheme's port when it names none; `Forwarded` and `X-Forwarded-*` are not read),
`network.protocol.version`, `user_agent.original` when the request has one,
`client.address`, `network.peer.address` and `network.peer.port` where the server
says who connected (a [`ClientAddress`], or axum's `ConnectInfo`; the peer, as
`Forwarded` and `X-Forwarded-For` are not read), and `http.response.status_code`. A 5xx is an error, with `error.type` the status code;
a 4xx is the caller's and leaves the status unset. A service that fails without a
response (`Err`) gets no status code and `error.type` `_OTHER`, and one that panics
while answering, `error.type` `panic`; both are counted in the metrics as status 500.
A request dropped before its service answered (the client went away, or a timeout
layer outside this one or the server's shutdown cancelled it) is counted as status
`499`, nginx's "client closed request", with the time until then; its span ends as
an error of `error.type` `cancelled`.

The span's context is put in the request's extensions (`opentelemetry::Context`) and
is the current context while the inner service runs, so handlers create child spans
and propagate it without extra code.

On a gRPC server (tonic) every call answers HTTP 200; its code comes in `grpc-status`,
in the headers of an answer without messages (tonic's answer to a handler's
`Err(Status)`), else in the trailers after the messages. The span gets
`rpc.grpc.status_code` from either, and an error status for the codes the
OpenTelemetry conventions count as the server's, with the code's name as `error.type`
(`INTERNAL`); a call whose code comes in the
trailers keeps its span open until they pass through the response body.

The metrics are recorded when the answer's head is ready, labelled with the HTTP
status (a gRPC call's code is in its span only): the duration is the time to the
head, and the request leaves the in-flight gauge then. A streamed body (server-sent
events, a download) would otherwise be in flight, and timed, for as long as it
streams.

Place it inside [`FirstResponseLayer`](mod@coldstart_runtime::first_response) so that
the first request's telemetry is recorded before that response is marked done.
*/

mod body;
mod future;
#[cfg(feature = "metrics")]
mod handles;
mod layer;

use std::task::{Context, Poll};
use std::time::Instant;

use http::{Method, Request};
use tower_service::Service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
#[cfg(feature = "tracing")]
pub use future::{kept, scrub_query, server_address};
pub use layer::HttpTelemetryLayer;

/// The route template of a request, for routers that know it (`/users/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route(pub &'static str);

/// The address a request came from, for its server span's `client.address`,
/// `network.peer.address` and `network.peer.port`: a server that accepts the
/// connections itself (hyper) puts it in each request's extensions. axum's
/// `ConnectInfo<SocketAddr>` is read too (feature `axum`; serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()`).
///
/// ```
/// use coldstart_exporters::http::ClientAddress;
/// let peer: std::net::SocketAddr = "203.0.113.9:51234".parse().unwrap();
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(ClientAddress(peer));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub std::net::SocketAddr);

/// Maps a request path to its route template.
pub type RouteFn = fn(&str) -> Option<&'static str>;

/// The middleware; see the module docs.
#[derive(Debug, Clone)]
pub struct HttpTelemetry<S> {
    inner: S,
    route: Option<RouteFn>,
    /// `url.scheme` of the spans where a request does not say its own.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    scheme: &'static str,
}

impl<S> HttpTelemetry<S> {
    /// Wraps `inner`; `scheme` is `url.scheme` where the request does not say it.
    pub fn new(inner: S, route: Option<RouteFn>, scheme: &'static str) -> Self {
        HttpTelemetry {
            inner,
            route,
            scheme,
        }
    }
}

/// The method label: one of the standard methods (or of those
/// `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` gives instead), or `_OTHER`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    known_method(method.as_str())
}

/// The label of a method given as text (an HTTP event's, on Lambda), as the HTTP
/// layer labels a request's: `method` where it is one of the standard methods (or of
/// those `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` gives instead), compared as the
/// conventions say (case matters), else `_OTHER`.
///
/// ```
/// assert_eq!(coldstart_exporters::http::known_method("GET"), "GET");
/// assert_eq!(coldstart_exporters::http::known_method("get"), "_OTHER");
/// ```
pub fn known_method(method: &str) -> &'static str {
    match crate::installed().and_then(|c| c.http_known_methods.as_deref()) {
        Some(known) => label_among(method, known),
        None => standard_label(method),
    }
}

/// `method` if it is one of `known` (compared as the specification says: case
/// matters), else `_OTHER`.
fn label_among(method: &str, known: &'static [String]) -> &'static str {
    known
        .iter()
        .find(|k| *k == method)
        .map_or("_OTHER", String::as_str)
}

fn standard_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "_OTHER",
    }
}

/// The route template of `req` as far as it is known before the service answers.
fn route_of<B>(req: &Request<B>, route: Option<RouteFn>) -> Option<&'static str> {
    if let Some(Route(r)) = req.extensions().get::<Route>() {
        return Some(r);
    }
    #[cfg(feature = "axum")]
    if let Some(m) = req.extensions().get::<axum::extract::MatchedPath>() {
        return Some(interned(m.as_str()));
    }
    route.and_then(|f| f(req.uri().path()))
}

/// `template` kept for the life of the program. axum's route templates are the
/// router's, a set fixed by the program's code, so each is kept once and a request's
/// labels and span take no allocation for it.
#[cfg(feature = "axum")]
fn interned(template: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::RwLock;
    static KEPT: RwLock<BTreeSet<&'static str>> = RwLock::new(BTreeSet::new());
    if let Some(kept) = KEPT.read().unwrap_or_else(|p| p.into_inner()).get(template) {
        return kept;
    }
    let mut kept = KEPT.write().unwrap_or_else(|p| p.into_inner());
    if let Some(template) = kept.get(template) {
        return template;
    }
    let template: &'static str = Box::leak(template.into());
    kept.insert(template);
    template
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
        // Made first: a panic in the program's code that runs here (its route
        // function, a propagator it installed reading the request's headers, the
        // service's synchronous part) is a request that panicked, counted as one that
        // panics in its future is.
        let mut record = future::Record::new(start, method);
        let route = record.polled(|| route_of(&req, self.route));
        record.set_route(route);
        #[cfg(feature = "tracing")]
        let cx = record.polled(|| future::start_span(&mut req, method, route, self.scheme));
        // The handler's synchronous part sees the server span as current too. Without
        // a tracer there is none, and the context is left as the caller had it.
        #[cfg(feature = "tracing")]
        let current = future::has_span(&cx).then(|| cx.clone().attach());
        #[cfg(feature = "tracing")]
        record.set_context(cx);
        let inner = record.polled(|| self.inner.call(req));
        #[cfg(feature = "tracing")]
        drop(current);
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
        // With `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`, its methods and no other.
        let known: &'static [String] = Vec::leak(vec!["GET".to_owned(), "PROPFIND".to_owned()]);
        assert_eq!(label_among("PROPFIND", known), "PROPFIND");
        assert_eq!(label_among("propfind", known), "_OTHER");
        assert_eq!(label_among("POST", known), "_OTHER");
        let req = Request::get("/users/42").body(()).unwrap_or_default();
        assert_eq!(route_of(&req, None), None);
        let users: RouteFn = |p| p.starts_with("/users/").then_some("/users/{id}");
        assert_eq!(route_of(&req, Some(users)), Some("/users/{id}"));
        let mut req = req;
        req.extensions_mut().insert(Route("/u/{id}"));
        assert_eq!(route_of(&req, Some(users)), Some("/u/{id}"));
    }

    #[cfg(feature = "axum")]
    #[test]
    fn a_template_is_kept_once() {
        let first = interned(&String::from("/orders/{id}"));
        let again = interned(&String::from("/orders/{id}"));
        assert!(std::ptr::eq(first, again));
        assert_eq!(first, "/orders/{id}");
        assert_ne!(interned("/orders"), first);
    }
}

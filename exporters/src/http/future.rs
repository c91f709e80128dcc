//! The response future of [`super::HttpTelemetry`]: records the request when the
//! inner service answers, fails or panics, and keeps the in-flight gauge right when it
//! is dropped unanswered. A gRPC call whose code comes in the trailers leaves its span
//! to the response body ([`super::body`]), which ends it when they pass.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

use super::body::{Pending, ResponseBody};

pin_project! {
    /// Resolves to the inner service's response, its body wrapped in a
    /// [`ResponseBody`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, record: Record) -> Self {
        ResponseFuture {
            inner,
            record: Some(record),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        #[cfg(feature = "tracing")]
        let _current = this
            .record
            .as_ref()
            .filter(|r| has_span(&r.cx))
            .map(|r| r.cx.clone().attach());
        // A record dropped while its service is polled: the service panicked.
        let output = match this.record.as_mut() {
            Some(record) => record.polled(|| this.inner.poll(cx)),
            None => this.inner.poll(cx),
        };
        let output = std::task::ready!(output);
        let Some(mut record) = this.record.take() else {
            return Poll::Ready(output.map(|r| r.map(ResponseBody::plain)));
        };
        Poll::Ready(match output {
            Ok(response) => {
                // The body is polled in the request's context, as the service was.
                #[cfg(feature = "tracing")]
                let body_cx = has_span(&record.cx).then(|| record.cx.clone());
                #[cfg(not(feature = "tracing"))]
                let body_cx = ();
                let pending = record.finish(Outcome::Answered(Answer::of(&response)));
                Ok(response.map(|body| ResponseBody::new(body, pending, body_cx)))
            }
            Err(e) => {
                record.finish(Outcome::Failed);
                Err(e)
            }
        })
    }
}

/// How a request ended.
enum Outcome {
    Answered(Answer),
    /// The service returned `Err`: no response.
    Failed,
    /// The service panicked while answering.
    Panicked,
}

/// What the layer reads of a response: its HTTP status, the route a router inside the
/// layer said answered, and, for gRPC, the status code when the response carries it
/// in its headers. The metrics label only the status and route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) struct Answer {
    status: http::StatusCode,
    route: Option<&'static str>,
    /// Whether the response is a gRPC call's (its content type says so).
    is_grpc: bool,
    grpc: Option<u8>,
}

impl Answer {
    /// A gRPC call's code comes in the `grpc-status` header when the answer has no
    /// message ("trailers-only", as tonic answers a handler's `Err(Status)`), else in
    /// the trailers after the body, which the layer does not wait for.
    pub(crate) fn of<B>(response: &http::Response<B>) -> Answer {
        let headers = response.headers();
        // `application/grpc`, `application/grpc+proto`, `application/grpc; ...`; not
        // `application/grpc-web`, whose trailers travel inside the body.
        let is_grpc = headers.get(http::header::CONTENT_TYPE).is_some_and(|t| {
            t.as_bytes()
                .strip_prefix(b"application/grpc")
                .is_some_and(|rest| matches!(rest.first(), None | Some(b'+' | b';')))
        });
        Answer {
            status: response.status(),
            route: response.extensions().get::<super::Route>().map(|r| r.0),
            is_grpc,
            grpc: is_grpc.then(|| grpc_code(headers)).flatten(),
        }
    }

    /// Whether the server failed: a 5xx status, or a gRPC code that counts as the
    /// server's error ([`is_server_error_code`]).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn is_server_error(self) -> bool {
        self.status.is_server_error() || self.grpc.is_some_and(is_server_error_code)
    }
}

/// The highest gRPC status code (`UNAUTHENTICATED`).
const MAX_GRPC_CODE: u8 = 16;

/// The gRPC code in `grpc-status`, in a trailers-only answer's headers or in the
/// trailers; `None` when absent or not a code.
pub(crate) fn grpc_code(headers: &http::HeaderMap) -> Option<u8> {
    headers
        .get("grpc-status")
        .and_then(|code| std::str::from_utf8(code.as_bytes()).ok()?.parse().ok())
        .filter(|&code| code <= MAX_GRPC_CODE)
}

/// Whether a gRPC code is one the OpenTelemetry conventions count as the server's
/// error (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS).
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn is_server_error_code(code: u8) -> bool {
    server_error_code_name(code).is_some()
}

/// The name of a gRPC code that is a server error (`INTERNAL`), as `error.type` has it.
pub(crate) fn server_error_code_name(code: u8) -> Option<&'static str> {
    Some(match code {
        2 => "UNKNOWN",
        4 => "DEADLINE_EXCEEDED",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        _ => return None,
    })
}

/// What is known about a request until it is answered. The timing and labels are
/// for the metrics; without feature `metrics` only the span is kept.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct Record {
    start: Instant,
    method: &'static str,
    route: Option<&'static str>,
    #[cfg(feature = "tracing")]
    cx: opentelemetry::Context,
    finished: bool,
    /// Set while the service's future is polled.
    polling: bool,
    /// The in-flight gauge the request was added to, and leaves.
    #[cfg(feature = "metrics")]
    in_flight: metrics::Gauge,
}

/// The `route` label of a request whose route template is not known.
#[cfg(feature = "metrics")]
const UNMATCHED: &str = "unmatched";

/// The `status` label of a request dropped before its service answered: nginx's
/// "client closed request", the code log and metrics tools know for it.
const CANCELLED: u16 = 499;

impl Record {
    /// Runs `call`, the service's synchronous part: a panic in it drops the record
    /// as one dropped while its service was polled, counted as a panic.
    pub(crate) fn polled<T>(&mut self, call: impl FnOnce() -> T) -> T {
        self.polling = true;
        let called = call();
        self.polling = false;
        called
    }

    /// A request that came at `start`, in flight from now; its route and server span
    /// are set once known ([`Record::set_route`], [`Record::set_context`]).
    pub(crate) fn new(start: Instant, method: &'static str) -> Record {
        Record {
            #[cfg(feature = "metrics")]
            in_flight: super::handles::enter_in_flight(),
            start,
            method,
            route: None,
            #[cfg(feature = "tracing")]
            cx: opentelemetry::Context::new(),
            finished: false,
            polling: false,
        }
    }

    /// The route template the layer's route function gave, if any.
    pub(crate) fn set_route(&mut self, route: Option<&'static str>) {
        self.route = route;
    }

    /// The context holding the request's server span.
    #[cfg(feature = "tracing")]
    pub(crate) fn set_context(&mut self, cx: opentelemetry::Context) {
        self.cx = cx;
    }

    /// Records how the request ended. The metrics are recorded now (a request that
    /// got no response, counted as status 500); the span ends now too, unless the
    /// answer is a gRPC call's whose code is still to come in the trailers: then it
    /// is returned for the response body to end.
    #[cfg_attr(
        not(any(feature = "metrics", feature = "tracing")),
        allow(unused_variables)
    )]
    fn finish(&mut self, outcome: Outcome) -> Option<Pending> {
        self.finished = true;
        let (status, route) = match &outcome {
            Outcome::Answered(answer) => (answer.status, answer.route.or(self.route)),
            Outcome::Failed | Outcome::Panicked => {
                (http::StatusCode::INTERNAL_SERVER_ERROR, self.route)
            }
        };
        self.count(route, status.as_u16());
        #[cfg(feature = "tracing")]
        {
            use opentelemetry::KeyValue;
            use opentelemetry::trace::TraceContextExt;
            // Finished: `drop` no longer needs the context.
            let cx = std::mem::take(&mut self.cx);
            let span = cx.span();
            // A span that is not sampled takes nothing: the name is not formatted.
            let recording = span.is_recording();
            if recording
                && route != self.route
                && let Some(route) = route
            {
                span.update_name(span_name(self.method, Some(route)));
                span.set_attribute(KeyValue::new("http.route", route));
            }
            if recording && let Outcome::Answered(_) = outcome {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status.as_u16()),
                ));
                if status.is_server_error() {
                    span.set_attribute(KeyValue::new("error.type", status.as_u16().to_string()));
                }
            }
            let pending = Pending::new(cx);
            match outcome {
                Outcome::Failed => pending.fail("_OTHER", "the service failed without a response"),
                Outcome::Panicked => pending.fail("panic", "the service panicked while answering"),
                Outcome::Answered(answer)
                    if answer.is_grpc && answer.grpc.is_none() && !status.is_server_error() =>
                {
                    return Some(pending);
                }
                Outcome::Answered(answer) => {
                    pending.finish(answer.grpc, answer.is_server_error().then_some(""));
                }
            }
        }
        None
    }

    /// Counts the request in the HTTP metrics with `status`, and the time since it
    /// came (the route `unmatched` when none is known).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn count(&self, route: Option<&'static str>, status: u16) {
        #[cfg(feature = "metrics")]
        super::handles::record(
            self.method,
            route.unwrap_or(UNMATCHED),
            status,
            self.start.elapsed().as_secs_f64(),
        );
    }

    /// Records a request dropped before its service answered: the client went away,
    /// or a layer outside this one or the server's shutdown cancelled it. Counted
    /// with status `CANCELLED` (499) and the time until then; the span ends as an error.
    fn cancelled(&mut self) {
        self.count(self.route, CANCELLED);
        #[cfg(feature = "tracing")]
        {
            use opentelemetry::trace::{Status, TraceContextExt};
            let span = self.cx.span();
            span.set_attribute(opentelemetry::KeyValue::new("error.type", "cancelled"));
            span.set_status(Status::error("request cancelled before a response"));
            span.end();
            // Traffic for the dynamic sampler, but no server error (as in the alerts'
            // 5xx ratios).
            crate::trace::sampler::record(false);
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        self.in_flight.decrement(1.0);
        if self.finished {
            return;
        }
        if self.polling {
            // Dropped while its service was being polled: the poll never returned.
            self.finish(Outcome::Panicked);
        } else {
            self.cancelled();
        }
    }
}

/// The server span's name: `{method} {route}`, `{method}` alone when the route is not
/// known, and `HTTP` for a method outside the standard set.
#[cfg(feature = "tracing")]
fn span_name(method: &'static str, route: Option<&'static str>) -> std::borrow::Cow<'static, str> {
    let method = if method == "_OTHER" { "HTTP" } else { method };
    match route {
        Some(route) => format!("{method} {route}").into(),
        None => method.into(),
    }
}

/// Query parameters whose values are credentials, replaced by `REDACTED` in `url.query`
/// (the OpenTelemetry URL conventions' list).
#[cfg(feature = "tracing")]
const SENSITIVE_QUERY: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// The first `chars` characters of `value` (all of it where it has no more), found
/// before any copy: a request's values are cut so for its span, by the HTTP layer and
/// the Lambda integration alike (the client chooses how long a path, a query or a
/// `User-Agent` is; hyper takes heads of about 400 KB). A query is cut as it is
/// scrubbed ([`scrub_query`]).
///
/// ```
/// assert_eq!(coldstart_exporters::http::kept("/élan/x", 5), "/élan");
/// assert_eq!(coldstart_exporters::http::kept("/a", 5), "/a");
/// ```
#[cfg(feature = "tracing")]
pub fn kept(value: &str, chars: usize) -> &str {
    // No more bytes than characters to keep: nothing to cut, nothing to decode.
    if value.len() <= chars {
        return value;
    }
    match value.char_indices().nth(chars) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

/// `query` with the values of the parameters the OpenTelemetry URL conventions name
/// as credentials (`AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`) replaced
/// by `REDACTED`, kept to its first `chars` characters, as the HTTP layer's and the
/// Lambda span's `url.query` have it. Scrubbed before it is cut, so that `REDACTED`
/// never takes it past `chars`, and built no further than `chars`: the client
/// chooses how long a query is.
///
/// ```
/// use coldstart_exporters::http::scrub_query;
/// assert_eq!(scrub_query("a=1&sig=secret", 2048), "a=1&sig=REDACTED");
/// assert_eq!(scrub_query("a=1&sig=secret", 9), "a=1&sig=R");
/// ```
#[cfg(feature = "tracing")]
pub fn scrub_query(query: &str, chars: usize) -> String {
    let mut out = String::with_capacity(query.len().min(chars));
    let mut left = chars;
    for (i, pair) in query.split('&').enumerate() {
        let (name, value) = match pair.split_once('=') {
            Some((name, _)) if SENSITIVE_QUERY.contains(&name) => (name, "=REDACTED"),
            _ => (pair, ""),
        };
        for part in [if i > 0 { "&" } else { "" }, name, value] {
            if left == 0 {
                return out;
            }
            let part = kept(part, left);
            out.push_str(part);
            left -= part.chars().count();
        }
    }
    out
}

/// The server's name and port as the request gives them: its `:authority` (HTTP/2, or
/// an absolute request line), else its `Host` header; an IPv6 address without its
/// brackets, and the scheme's port when none is given (no port when the one given
/// is no port number). `None` when neither is there or the value is no authority.
#[cfg(feature = "tracing")]
fn server<B>(req: &http::Request<B>, scheme: &str) -> Option<(String, Option<u16>)> {
    let from_host;
    let authority = match req.uri().authority() {
        Some(authority) => authority,
        None => {
            let host = req.headers().get(http::header::HOST)?.to_str().ok()?;
            from_host = host.parse::<http::uri::Authority>().ok()?;
            &from_host
        }
    };
    server_of(authority, scheme)
}

/// The server's name and port a `Host` value gives, as the HTTP layer reads them: an
/// IPv6 address without its brackets, the scheme's port (`https`: 443, else 80) when
/// none is given, no port when the one given is no port number. `None` when `host` is
/// no authority.
///
/// ```
/// use coldstart_exporters::http::server_address;
/// assert_eq!(server_address("lb.example:8080", "http"), Some(("lb.example".into(), Some(8080))));
/// assert_eq!(server_address("[::1]", "https"), Some(("::1".into(), Some(443))));
/// ```
#[cfg(feature = "tracing")]
pub fn server_address(host: &str, scheme: &str) -> Option<(String, Option<u16>)> {
    server_of(&host.parse::<http::uri::Authority>().ok()?, scheme)
}

#[cfg(feature = "tracing")]
fn server_of(authority: &http::uri::Authority, scheme: &str) -> Option<(String, Option<u16>)> {
    let named = authority.host();
    let host = named
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(named);
    if host.is_empty() {
        return None;
    }
    // What follows the host is a port, given or not a number; user info before it
    // (`user@host`, which an absolute request line may carry) is not.
    let host_and_port = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, after)| after);
    let port_given = host_and_port.len() > named.len();
    let port = match (authority.port_u16(), port_given, scheme) {
        (Some(port), _, _) => Some(port),
        (None, true, _) => None,
        (None, false, "https") => Some(443),
        (None, false, _) => Some(80),
    };
    Some((host.to_owned(), port))
}

/// Whether `cx`, a context [`start_span`] gave, holds a server span: not where
/// tracing is off, whose empty context is not attached (it would hide the caller's).
#[cfg(feature = "tracing")]
pub(crate) fn has_span(cx: &opentelemetry::Context) -> bool {
    use opentelemetry::trace::TraceContextExt as _;
    cx.has_active_span()
}

/// Starts the server span for `req`, continuing the caller's trace, and puts its
/// context in the request's extensions. An empty context when tracing is off.
#[cfg(feature = "tracing")]
pub(crate) fn start_span<B>(
    req: &mut http::Request<B>,
    method: &'static str,
    route: Option<&'static str>,
    scheme: &'static str,
) -> opentelemetry::Context {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
    let Some(tracer) = crate::trace::tracer() else {
        return opentelemetry::Context::new();
    };
    // What the request's head gives, kept to the span's value length: the client
    // chooses how long a path, a query or a `User-Agent` is (hyper takes heads of
    // about 400 KB), and a queue of 2048 spans kept them whole.
    let keep = tracer.request_value_chars();
    let clip = move |value: &str| kept(value, keep).to_owned();
    let parent = crate::trace::propagation::extract_carried(req.headers());
    let builder = tracer.span_builder("").with_kind(SpanKind::Server);
    // The name and attributes are made only for a span that is sampled.
    let span = tracer.start_described(builder, &parent, |span| {
        span.name = span_name(method, route);
        // Under an axum router nested in another, the request's path has lost the
        // outer router's prefix; the whole one is in `OriginalUri`.
        #[cfg(feature = "axum")]
        let uri = match req.extensions().get::<axum::extract::OriginalUri>() {
            Some(original) => &original.0,
            None => req.uri(),
        };
        #[cfg(not(feature = "axum"))]
        let uri = req.uri();
        let mut attributes = Vec::with_capacity(15);
        attributes.push(KeyValue::new("http.request.method", method));
        if method == "_OTHER" {
            let original = clip(req.method().as_str());
            attributes.push(KeyValue::new("http.request.method_original", original));
        }
        if let Some(route) = route {
            attributes.push(KeyValue::new("http.route", route));
        }
        attributes.push(KeyValue::new("url.path", clip(uri.path())));
        if let Some(query) = uri.query() {
            attributes.push(KeyValue::new("url.query", scrub_query(query, keep)));
        }
        let scheme = match uri.scheme_str() {
            Some(given) => opentelemetry::Value::from(given.to_owned()),
            None => opentelemetry::Value::from(scheme),
        };
        if let Some((address, port)) = server(req, scheme.as_str().as_ref()) {
            let mut address = address;
            address.truncate(kept(&address, keep).len());
            attributes.push(KeyValue::new("server.address", address));
            if let Some(port) = port {
                attributes.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        attributes.push(KeyValue::new("url.scheme", scheme));
        // Recommended by the conventions: which HTTP, and who says it asks.
        let version = match req.version() {
            http::Version::HTTP_09 => "0.9",
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_11 => "1.1",
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_3 => "3",
            _ => "",
        };
        if !version.is_empty() {
            attributes.push(KeyValue::new("network.protocol.version", version));
        }
        let agent = req.headers().get(http::header::USER_AGENT);
        if let Some(agent) = agent.and_then(|a| a.to_str().ok()) {
            attributes.push(KeyValue::new("user_agent.original", clip(agent)));
        }
        let peer = req.extensions().get::<super::ClientAddress>().map(|c| c.0);
        #[cfg(feature = "axum")]
        let peer = peer.or_else(|| {
            let info = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
            info.map(|c| c.0)
        });
        if let Some(peer) = peer {
            // An IPv4 client of a dual-stack listener as IPv4 (`::ffff:203.0.113.9`
            // is `203.0.113.9`).
            let ip = peer.ip().to_canonical().to_string();
            attributes.push(KeyValue::new("client.address", ip.clone()));
            attributes.push(KeyValue::new("network.peer.address", ip));
            attributes.push(KeyValue::new("network.peer.port", i64::from(peer.port())));
        }
        span.attributes = Some(attributes);
    });
    let cx = parent.with_span(span);
    req.extensions_mut().insert(cx.clone());
    cx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)]) -> Answer {
        let mut response = http::Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        Answer::of(&response.body(()).unwrap_or_default())
    }

    #[cfg(feature = "tracing")]
    #[test]
    fn the_server_port_is_what_follows_the_host() {
        let at = |uri: &str, host: Option<&str>, scheme: &str| {
            let mut req = http::Request::get(uri);
            if let Some(host) = host {
                req = req.header(http::header::HOST, host);
            }
            server(&req.body(()).unwrap(), scheme)
        };
        let named = |host: &str, port: Option<u16>| Some((host.to_owned(), port));
        assert_eq!(
            at("/", Some("a.example:8080"), "http"),
            named("a.example", Some(8080))
        );
        assert_eq!(
            at("/", Some("a.example"), "https"),
            named("a.example", Some(443))
        );
        assert_eq!(at("/", Some("[::1]"), "http"), named("::1", Some(80)));
        // User info is no port: the scheme's port where none follows the host.
        assert_eq!(
            at("http://user@a.example/", None, "http"),
            named("a.example", Some(80))
        );
        assert_eq!(
            at("/", Some("u:p@a.example"), "https"),
            named("a.example", Some(443))
        );
        assert_eq!(
            at("http://user@a.example:81/", None, "http"),
            named("a.example", Some(81))
        );
        // A port that is no number: no port.
        assert_eq!(
            at("/", Some("a.example:x"), "http"),
            named("a.example", None)
        );
        assert_eq!(at("/", None, "http"), None);
    }

    #[test]
    fn a_grpc_code_is_read_from_a_grpc_answers_headers_only() {
        let grpc = ("content-type", "application/grpc");
        let internal = answer(200, &[grpc, ("grpc-status", "13")]);
        assert_eq!(internal.grpc, Some(13));
        assert!(internal.is_server_error());
        let not_found = answer(
            200,
            &[
                ("content-type", "application/grpc+proto"),
                ("grpc-status", "5"),
            ],
        );
        assert_eq!(not_found.grpc, Some(5));
        assert!(!not_found.is_server_error(), "NOT_FOUND is the caller's");
        // The code comes in the trailers: not known when the layer records.
        assert_eq!(answer(200, &[grpc]).grpc, None);
        // Not gRPC (gRPC-Web carries its trailers in the body), or not a code.
        assert_eq!(answer(200, &[("grpc-status", "13")]).grpc, None);
        let web = answer(
            200,
            &[
                ("content-type", "application/grpc-web"),
                ("grpc-status", "13"),
            ],
        );
        assert_eq!((web.is_grpc, web.grpc), (false, None));
        let with_params = answer(
            200,
            &[
                ("content-type", "application/grpc; charset=x"),
                ("grpc-status", "13"),
            ],
        );
        assert_eq!(with_params.grpc, Some(13));
        for bad in ["17", "-1", "thirteen", "", " 13"] {
            assert_eq!(
                answer(200, &[grpc, ("grpc-status", bad)]).grpc,
                None,
                "{bad:?}"
            );
        }
        // A 5xx is a server error whatever the protocol.
        assert!(answer(503, &[grpc]).is_server_error());
        assert!(!answer(404, &[]).is_server_error());
    }

    #[cfg(feature = "tracing")]
    proptest::proptest! {
        /// Cut as it is scrubbed, a query is what the whole scrubbed query's first
        /// `chars` characters are: a credential's value never shows, `REDACTED` never
        /// takes it past the limit, and nothing past the limit is built.
        #[test]
        fn a_query_cut_as_it_is_scrubbed_is_the_scrubbed_query_cut(
            pairs in proptest::collection::vec(
                ("(sig|Signature|a|é|)", "(=)?", "[a-zé=]{0,12}"),
                0..6,
            ),
            chars in 0usize..80,
        ) {
            let query: Vec<String> =
                pairs.iter().map(|(n, eq, v)| format!("{n}{eq}{v}")).collect();
            let query = query.join("&");
            let whole = scrub_query(&query, usize::MAX);
            proptest::prop_assert_eq!(scrub_query(&query, chars), kept(&whole, chars));
            proptest::prop_assert!(scrub_query(&query, chars).chars().count() <= chars);
        }
    }
}

//! An HTTP event (API Gateway's REST, HTTP and WebSocket APIs, function URLs, load
//! balancers), read once for the invocation's span: the trace context its headers
//! carry, and its request as the OpenTelemetry HTTP server conventions name it.
//!
//! Read with serde, every other key skipped unread (the body above all: an event can
//! be 6 MB); strings, header names among them, are borrowed from the event where they
//! hold no escape, a header nothing reads is passed over without a copy of its value,
//! and at most 64 headers of each of the two objects are kept. A value of an
//! unexpected type (a number for a header, a string for `requestContext`) is no
//! value, and the rest is still read: a caller's odd header must not cost the trace
//! its parent. (A key the event itself gives twice, which API Gateway never writes,
//! still leaves it unread.) Nothing here may fail an invocation.
//!
//! Where each attribute comes from:
//!
//! | attribute | HTTP API (payload 2.0), function URL | REST API; HTTP API (payload 1.0) | load balancer |
//! |---|---|---|---|
//! | `http.request.method` | `requestContext.http.method` | `httpMethod` | `httpMethod` |
//! | `http.route` | `routeKey` without its method (none for `$default`) | `resource`; `requestContext.routeKey` without its method | none |
//! | `url.path` | `rawPath` | `path` | `path` |
//! | `url.query` | `rawQueryString` | none (given parsed only) | none (given parsed only) |
//! | `url.scheme` | `X-Forwarded-Proto` (its first value, in lower case), else `https` | the same | `X-Forwarded-Proto`, the same |
//! | `server.address`, `server.port` | `requestContext.domainName`, 443 | `requestContext.domainName`, 443 | `Host` (its port, else the scheme's) |
//! | `client.address` | `requestContext.http.sourceIp` | `requestContext.identity.sourceIp` | the first entry of `X-Forwarded-For` where it is an address (what the client sent, where the proxy appends) |
//! | `user_agent.original` | `requestContext.http.userAgent` | `requestContext.identity.userAgent` | `User-Agent` |
//! | `network.protocol.version` | `requestContext.http.protocol` | `requestContext.protocol` | none |
//!
//! A WebSocket API's event (its `requestContext` has an `eventType`) has `url.scheme`
//! `wss` and no route (its route keys, `$connect`, are no paths).

use std::borrow::Cow;
use std::collections::HashMap;

use opentelemetry::{Context, KeyValue};
use serde::Deserialize;

use crate::lenient::{self, Entries, Lenient, Text, Texts};

/// What an HTTP event says of its request.
#[derive(Debug, Default)]
pub(crate) struct Request<'a> {
    /// The caller's context, from the headers the installed propagator names; empty
    /// where they carry none.
    pub(crate) parent: Context,
    method: Option<Cow<'a, str>>,
    route: Option<Cow<'a, str>>,
    path: Option<Cow<'a, str>>,
    query: Option<Cow<'a, str>>,
    scheme: Option<Cow<'a, str>>,
    server: Option<Server<'a>>,
    client: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    protocol: Option<Cow<'a, str>>,
}

/// Where the server's name comes from.
#[derive(Debug)]
enum Server<'a> {
    /// API Gateway's or a function URL's domain, served on 443 only.
    Domain(Cow<'a, str>),
    /// A load balancer's `Host` header, read as the HTTP layer reads one.
    Host(Cow<'a, str>),
}

/// Reads `body`, an HTTP event; an empty request where it is no JSON object.
pub(crate) fn read(body: &[u8]) -> Request<'_> {
    // Only what the installed propagator reads (its fields: coldstart's, or one the
    // program installed in their place), and the headers below.
    let fields: Vec<String> = opentelemetry::global::get_text_map_propagator(|p| {
        p.fields().map(str::to_ascii_lowercase).collect()
    });
    let names = READ.iter().map(|&r| r.to_owned());
    let names = names.chain(fields.iter().cloned()).collect();
    let event = lenient::keeping(names, || serde_json::from_slice::<Event<'_>>(body));
    let Ok(event) = event else {
        return Request::default();
    };
    let context = event.request_context.0.unwrap_or_default();
    let http = context.http.0.unwrap_or_default();
    let identity = context.identity.0.unwrap_or_default();
    let mut headers = Headers::default();
    headers.read(&fields, event.multi_value_headers, event.headers);
    let parent = headers.context();
    // The conventions' route is the template alone. An HTTP API's route key puts the
    // method before it (`GET /items/{id}`), at the top level in its payload 2.0 and in
    // `requestContext` in its payload 1.0, whose `resource` is then the raw path on a
    // `$default` route; its catch-all is `$default`, and a WebSocket API's keys
    // (`$connect`) are no paths. A REST API's `resource` is its template.
    let route = match (
        &context.event_type.0,
        event.route_key.0.or(context.route_key.0),
    ) {
        (Some(_), _) => None,
        (None, Some(key)) => template(key),
        (None, None) => event.resource.0,
    };
    // A WebSocket API's events (an `eventType`) come over `wss`; API Gateway and
    // function URLs take HTTPS only (their `requestContext` has the domain); a load
    // balancer says in `X-Forwarded-Proto` what its listener took.
    let scheme = match context.event_type.0 {
        Some(_) => Some(Cow::Borrowed("wss")),
        None => headers.forwarded_proto.or_else(|| {
            let https = context.domain_name.0.is_some();
            https.then_some(Cow::Borrowed("https"))
        }),
    };
    let server = match context.domain_name.0 {
        Some(domain) => Some(Server::Domain(domain)),
        None => headers.host.map(Server::Host),
    };
    Request {
        parent,
        method: http.method.0.or(event.http_method.0),
        route,
        path: event.raw_path.0.or(event.path.0),
        query: event.raw_query.0.filter(|q| !q.is_empty()),
        scheme,
        server,
        client: (http.source_ip.0)
            .or(identity.source_ip.0)
            .or(headers.forwarded_for),
        user_agent: (http.user_agent.0)
            .or(identity.user_agent.0)
            .or(headers.user_agent),
        protocol: http.protocol.0.or(context.protocol.0),
    }
}

/// The route template of a route key (`GET /items/{id}`: `/items/{id}`); none for
/// `$default` or a WebSocket route.
fn template(key: Cow<'_, str>) -> Option<Cow<'_, str>> {
    let at = key.find(' ')? + 1;
    if !key[at..].starts_with('/') {
        return None;
    }
    Some(match key {
        Cow::Borrowed(key) => Cow::Borrowed(&key[at..]),
        Cow::Owned(key) => Cow::Owned(key[at..].to_owned()),
    })
}

/// The IP address of an `X-Forwarded-For` entry: `203.0.113.9`, `203.0.113.9:443`,
/// `2001:db8::1` or `[2001:db8::1]:443`; none for anything else (`unknown`, a name).
fn address(entry: &str) -> Option<std::net::IpAddr> {
    use std::net::{IpAddr, SocketAddr};
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

impl Request<'_> {
    /// The route template (`http.route`), where the event has one.
    pub(crate) fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }

    /// The request's attributes, each value cut to `keep` characters (the caller
    /// chooses how long a path or a `User-Agent` is).
    pub(crate) fn attributes(&self, keep: usize, out: &mut Vec<KeyValue>) {
        let clip = |value: &str| coldstart_exporters::http::kept(value, keep).to_owned();
        if let Some(method) = &self.method {
            let label = coldstart_exporters::http::known_method(method);
            out.push(KeyValue::new("http.request.method", label));
            if label == "_OTHER" {
                out.push(KeyValue::new("http.request.method_original", clip(method)));
            }
        }
        let texts = [
            ("http.route", &self.route),
            ("url.path", &self.path),
            ("url.scheme", &self.scheme),
            ("client.address", &self.client),
            ("user_agent.original", &self.user_agent),
        ];
        for (key, value) in texts {
            if let Some(value) = value {
                out.push(KeyValue::new(key, clip(value)));
            }
        }
        let server = match &self.server {
            Some(Server::Domain(domain)) => Some((clip(domain), Some(443))),
            Some(Server::Host(host)) => {
                let scheme = self.scheme.as_deref().unwrap_or("http");
                coldstart_exporters::http::server_address(host, scheme)
                    .map(|(address, port)| (clip(&address), port))
            }
            None => None,
        };
        if let Some((address, port)) = server {
            out.push(KeyValue::new("server.address", address));
            if let Some(port) = port {
                out.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        if let Some(query) = &self.query {
            let query = coldstart_exporters::http::scrub_query(query, keep);
            out.push(KeyValue::new("url.query", query));
        }
        // `HTTP/1.1` as the events give it; the conventions take `1.1`, and `2` and
        // `3` for the later ones, as the HTTP layer writes them.
        let version = match self.protocol.as_deref() {
            Some(p) => match p.strip_prefix("HTTP/").unwrap_or(p) {
                "2.0" => "2",
                "3.0" => "3",
                version => version,
            },
            None => "",
        };
        if !version.is_empty() {
            out.push(KeyValue::new("network.protocol.version", clip(version)));
        }
    }
}

/// The headers read, from both places events put them.
#[derive(Default)]
struct Headers<'a> {
    /// What the installed propagator reads, by the name its extractor looks up; a
    /// header's values joined, as the HTTP layer reads one sent twice.
    propagated: HashMap<String, String>,
    forwarded_proto: Option<Cow<'a, str>>,
    /// The first address of `X-Forwarded-For`: the client, as the proxy saw it.
    forwarded_for: Option<Cow<'a, str>>,
    host: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
}

/// The headers read besides the propagator's, in lower case.
const READ: [&str; 4] = ["x-forwarded-proto", "x-forwarded-for", "host", "user-agent"];

impl<'a> Headers<'a> {
    /// Reads `multi` (`multiValueHeaders`), then what `single` (`headers`) has that
    /// `multi` lacks: `headers` holds one value of what `multiValueHeaders` holds all
    /// of. Names in any case; those that differ in case only are one header, as API
    /// Gateway's REST events and load balancers keep them apart. `fields` are the
    /// installed propagator's, in lower case; a header nothing reads was passed over
    /// as the event was read (`lenient::keeping`).
    fn read(
        &mut self,
        fields: &[String],
        multi: Entries<'a, Texts<'a>>,
        single: Entries<'a, Text<'a>>,
    ) {
        // The name in lower case, where something reads it.
        let wanted = |name: &str| -> Option<&str> {
            let read = READ.iter().copied().find(|r| r.eq_ignore_ascii_case(name));
            read.or_else(|| {
                let field = fields.iter().find(|f| f.eq_ignore_ascii_case(name));
                field.map(String::as_str)
            })
        };
        let mut from_multi: Vec<&str> = Vec::new();
        for (name, values) in multi.0 {
            if let Some(lower) = wanted(&name).filter(|_| !values.0.is_empty()) {
                self.add(fields, lower, values.0);
                if !from_multi.contains(&lower) {
                    from_multi.push(lower);
                }
            }
        }
        for (name, value) in single.0 {
            if let (Some(lower), Some(value)) = (wanted(&name), value.0)
                && !from_multi.contains(&lower)
            {
                self.add(fields, lower, vec![value]);
            }
        }
    }

    /// Takes the values of the header `lower` (its name in lower case).
    fn add(&mut self, fields: &[String], lower: &str, values: Vec<Cow<'a, str>>) {
        // The first value's first entry, where a proxy's list is given.
        let entry = || {
            let list = values.first()?;
            Some(list.split(',').next().unwrap_or_default().trim())
        };
        let (kept, value) = match lower {
            "host" => (&mut self.host, values.first().cloned()),
            "user-agent" => (&mut self.user_agent, values.first().cloned()),
            // `https`, or a list of them from proxies in turn: the first, as a scheme.
            "x-forwarded-proto" => {
                let proto = entry().filter(|proto| !proto.is_empty());
                let scheme = proto.map(|proto| Cow::Owned(proto.to_ascii_lowercase()));
                (&mut self.forwarded_proto, scheme)
            }
            // The client's entry (as the client sent it, where the proxy appends
            // rather than replaces): an address, its port taken off, or nothing.
            "x-forwarded-for" => {
                let client = entry().and_then(address);
                (
                    &mut self.forwarded_for,
                    client.map(|ip| Cow::Owned(ip.to_string())),
                )
            }
            _ => return self.propagate(fields, lower, &values),
        };
        // The first header of a name that gives a value counts.
        if kept.is_none() {
            *kept = value;
        }
        self.propagate(fields, lower, &values);
    }

    /// Keeps the values of `lower` where the installed propagator reads it.
    fn propagate(&mut self, fields: &[String], lower: &str, values: &[Cow<'a, str>]) {
        if let Some(field) = fields.iter().find(|f| *f == lower) {
            let joined = values.join(",");
            self.propagated
                .entry(field.clone())
                .and_modify(|all| {
                    all.push(',');
                    all.push_str(&joined);
                })
                .or_insert(joined);
        }
    }

    /// The context the propagated headers carry; empty where there are none.
    fn context(&self) -> Context {
        if self.propagated.is_empty() {
            return Context::new();
        }
        coldstart_exporters::trace::propagation::extract_map(&self.propagated)
    }
}

/// The keys of an HTTP event read here; the others are skipped.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default, borrow)]
    headers: Entries<'a, Text<'a>>,
    #[serde(default, borrow, rename = "multiValueHeaders")]
    multi_value_headers: Entries<'a, Texts<'a>>,
    #[serde(default, borrow, rename = "httpMethod")]
    http_method: Text<'a>,
    #[serde(default, borrow)]
    path: Text<'a>,
    #[serde(default, borrow)]
    resource: Text<'a>,
    #[serde(default, borrow, rename = "routeKey")]
    route_key: Text<'a>,
    #[serde(default, borrow, rename = "rawPath")]
    raw_path: Text<'a>,
    #[serde(default, borrow, rename = "rawQueryString")]
    raw_query: Text<'a>,
    #[serde(default, borrow, rename = "requestContext")]
    request_context: Lenient<RequestContext<'a>>,
}

#[derive(Deserialize, Default)]
struct RequestContext<'a> {
    #[serde(default, borrow, rename = "domainName")]
    domain_name: Text<'a>,
    /// An HTTP API's route key in its payload 1.0, or a WebSocket API's.
    #[serde(default, borrow, rename = "routeKey")]
    route_key: Text<'a>,
    /// A WebSocket API's `CONNECT`, `MESSAGE` or `DISCONNECT`.
    #[serde(default, borrow, rename = "eventType")]
    event_type: Text<'a>,
    #[serde(default, borrow)]
    protocol: Text<'a>,
    #[serde(default, borrow)]
    http: Lenient<HttpContext<'a>>,
    #[serde(default, borrow)]
    identity: Lenient<Identity<'a>>,
}

/// `requestContext.http` of an HTTP API's (v2) or a function URL's event.
#[derive(Deserialize, Default)]
struct HttpContext<'a> {
    #[serde(default, borrow)]
    method: Text<'a>,
    #[serde(default, borrow)]
    protocol: Text<'a>,
    #[serde(default, borrow, rename = "sourceIp")]
    source_ip: Text<'a>,
    #[serde(default, borrow, rename = "userAgent")]
    user_agent: Text<'a>,
}

/// `requestContext.identity` of a REST API's (v1) event.
#[derive(Deserialize, Default)]
struct Identity<'a> {
    #[serde(default, borrow, rename = "sourceIp")]
    source_ip: Text<'a>,
    #[serde(default, borrow, rename = "userAgent")]
    user_agent: Text<'a>,
}

#[cfg(test)]
mod tests {
    use opentelemetry::{Key, KeyValue, Value};

    use super::read;

    /// A propagator the program installs in place of coldstart's (here one header of
    /// its own) reads an HTTP event's headers too: only `traceparent`, `tracestate`
    /// and `baggage` were passed to it. (The only test of this binary that sets the
    /// global propagator.)
    #[test]
    fn an_http_events_headers_are_read_by_the_installed_propagators_fields() {
        use opentelemetry::propagation::text_map_propagator::FieldIter;
        use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
        #[derive(Debug)]
        struct OneHeader(Vec<String>);
        impl TextMapPropagator for OneHeader {
            fn inject_context(&self, _: &opentelemetry::Context, _: &mut dyn Injector) {}
            fn extract_with_context(
                &self,
                cx: &opentelemetry::Context,
                extractor: &dyn Extractor,
            ) -> opentelemetry::Context {
                match extractor.get("x-test-trace").map(TraceId::from_hex) {
                    Some(Ok(trace)) => cx.with_remote_span_context(SpanContext::new(
                        trace,
                        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
                        TraceFlags::SAMPLED,
                        true,
                        Default::default(),
                    )),
                    _ => cx.clone(),
                }
            }
            fn fields(&self) -> FieldIter<'_> {
                FieldIter::new(&self.0)
            }
        }
        opentelemetry::global::set_text_map_propagator(OneHeader(vec!["x-test-trace".into()]));
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        for body in [
            format!(r#"{{"headers":{{"X-Test-Trace":"{trace}"}},"body":null}}"#),
            format!(r#"{{"multiValueHeaders":{{"x-test-trace":["{trace}"]}}}}"#),
        ] {
            let cx = super::read(body.as_bytes()).parent;
            assert_eq!(
                cx.span().span_context().trace_id().to_string(),
                trace,
                "{body}"
            );
        }
    }

    /// The attributes of `event`'s request, keeping `keep` characters of each value.
    fn attributes(event: &str, keep: usize) -> Vec<KeyValue> {
        let mut out = Vec::new();
        read(event.as_bytes()).attributes(keep, &mut out);
        out
    }

    fn value(attributes: &[KeyValue], key: &str) -> Option<Value> {
        let key = Key::from(key.to_owned());
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.clone())
    }

    fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
        value(attributes, key).map(|v| v.as_str().into_owned())
    }

    /// An HTTP API's (v2) event, as API Gateway sends it (trimmed).
    const HTTP_API: &str = r#"{"version":"2.0","routeKey":"GET /items/{id}","rawPath":"/items/42","rawQueryString":"a=1&sig=secret","headers":{"host":"abc.execute-api.eu-west-1.amazonaws.com","user-agent":"curl/8.5.0","x-forwarded-proto":"https"},"requestContext":{"domainName":"abc.execute-api.eu-west-1.amazonaws.com","http":{"method":"GET","path":"/items/42","protocol":"HTTP/1.1","sourceIp":"203.0.113.9","userAgent":"curl/8.5.0"},"routeKey":"GET /items/{id}"},"body":"eyJhIjoxfQ==","isBase64Encoded":true}"#;

    /// A REST API's (v1) event (trimmed).
    const REST_API: &str = r#"{"resource":"/items/{id}","path":"/items/42","httpMethod":"POST","headers":{"Host":"abc.execute-api.eu-west-1.amazonaws.com","X-Forwarded-Proto":"https"},"multiValueHeaders":{"Host":["abc.execute-api.eu-west-1.amazonaws.com"],"X-Forwarded-Proto":["https"]},"queryStringParameters":{"a":"1"},"requestContext":{"domainName":"abc.execute-api.eu-west-1.amazonaws.com","protocol":"HTTP/1.1","identity":{"sourceIp":"203.0.113.9","userAgent":"Mozilla/5.0"},"httpMethod":"POST"},"body":null}"#;

    /// A load balancer's event (trimmed).
    const LOAD_BALANCER: &str = r#"{"requestContext":{"elb":{"targetGroupArn":"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tg/1"}},"httpMethod":"GET","path":"/health","queryStringParameters":{},"headers":{"host":"lb.example","user-agent":"ELB-HealthChecker/2.0","x-forwarded-proto":"http"},"body":"","isBase64Encoded":false}"#;

    #[test]
    fn an_http_apis_request_follows_the_http_server_conventions() {
        let a = attributes(HTTP_API, 2048);
        assert_eq!(text(&a, "http.request.method").as_deref(), Some("GET"));
        assert_eq!(text(&a, "http.route").as_deref(), Some("/items/{id}"));
        assert_eq!(text(&a, "url.path").as_deref(), Some("/items/42"));
        assert_eq!(text(&a, "url.query").as_deref(), Some("a=1&sig=REDACTED"));
        assert_eq!(text(&a, "url.scheme").as_deref(), Some("https"));
        assert_eq!(
            text(&a, "server.address").as_deref(),
            Some("abc.execute-api.eu-west-1.amazonaws.com")
        );
        assert_eq!(text(&a, "client.address").as_deref(), Some("203.0.113.9"));
        assert_eq!(
            text(&a, "user_agent.original").as_deref(),
            Some("curl/8.5.0")
        );
        assert_eq!(text(&a, "network.protocol.version").as_deref(), Some("1.1"));
        assert_eq!(value(&a, "http.request.method_original"), None);
    }

    #[test]
    fn a_rest_apis_and_a_load_balancers_requests_too() {
        let a = attributes(REST_API, 2048);
        assert_eq!(text(&a, "http.request.method").as_deref(), Some("POST"));
        assert_eq!(text(&a, "http.route").as_deref(), Some("/items/{id}"));
        assert_eq!(text(&a, "url.path").as_deref(), Some("/items/42"));
        assert_eq!(text(&a, "url.query"), None, "given parsed only");
        assert_eq!(text(&a, "url.scheme").as_deref(), Some("https"));
        assert_eq!(text(&a, "client.address").as_deref(), Some("203.0.113.9"));
        assert_eq!(
            text(&a, "user_agent.original").as_deref(),
            Some("Mozilla/5.0")
        );
        assert_eq!(text(&a, "network.protocol.version").as_deref(), Some("1.1"));

        let a = attributes(LOAD_BALANCER, 2048);
        assert_eq!(text(&a, "http.request.method").as_deref(), Some("GET"));
        assert_eq!(
            text(&a, "http.route"),
            None,
            "a load balancer has no routes"
        );
        assert_eq!(text(&a, "url.path").as_deref(), Some("/health"));
        assert_eq!(text(&a, "url.scheme").as_deref(), Some("http"));
        assert_eq!(text(&a, "server.address").as_deref(), Some("lb.example"));
        assert_eq!(
            text(&a, "user_agent.original").as_deref(),
            Some("ELB-HealthChecker/2.0")
        );
        assert_eq!(text(&a, "client.address"), None);
    }

    /// No route where the route key names none; an unknown method is `_OTHER`, its
    /// name kept apart; values cut to what the span keeps.
    #[test]
    fn catch_alls_odd_methods_and_long_values() {
        for key in ["$default", "$connect", "ANY"] {
            let event = format!(r#"{{"routeKey":"{key}","rawPath":"/x"}}"#);
            assert_eq!(text(&attributes(&event, 2048), "http.route"), None, "{key}");
        }
        let event = r#"{"httpMethod":"BREW","path":"/pot"}"#;
        let a = attributes(event, 2048);
        assert_eq!(text(&a, "http.request.method").as_deref(), Some("_OTHER"));
        assert_eq!(
            text(&a, "http.request.method_original").as_deref(),
            Some("BREW")
        );
        let long = format!(r#"{{"rawPath":"/{}é"}}"#, "a".repeat(10));
        assert_eq!(
            text(&attributes(&long, 5), "url.path").as_deref(),
            Some("/aaaa")
        );
        // An empty query is none.
        let empty = r#"{"rawPath":"/","rawQueryString":""}"#;
        assert_eq!(text(&attributes(empty, 2048), "url.query"), None);
    }

    /// A value of a type no event gives is no value, and the rest is still read:
    /// before, one header given as a number left the whole event unread.
    #[test]
    fn odd_values_are_none_and_the_rest_is_read() {
        let event = r#"{"headers":{"x-n":42,"x-o":{"a":[1]},"user-agent":"ua"},"multiValueHeaders":{"x-m":"one","x-l":[1,"two",null]},"httpMethod":["GET"],"path":"/p","requestContext":"none","resource":null}"#;
        let a = attributes(event, 2048);
        assert_eq!(text(&a, "url.path").as_deref(), Some("/p"));
        assert_eq!(text(&a, "user_agent.original").as_deref(), Some("ua"));
        assert_eq!(text(&a, "http.request.method"), None);
        assert_eq!(text(&a, "http.route"), None);
        let event =
            r#"{"path":"/q","requestContext":{"http":"GET","identity":[1],"domainName":7}}"#;
        let a = attributes(event, 2048);
        assert_eq!(text(&a, "url.path").as_deref(), Some("/q"));
        assert_eq!(text(&a, "server.address"), None);
        // Escaped strings are read too (owned, not borrowed).
        let event = r#"{"rawPath":"/a\u00e9\"b"}"#;
        assert_eq!(
            text(&attributes(event, 2048), "url.path").as_deref(),
            Some("/aé\"b")
        );
        for garbage in ["", "[]", "null", "{", "\"http\""] {
            assert!(attributes(garbage, 2048).is_empty(), "{garbage}");
        }
    }

    fn number(attributes: &[KeyValue], key: &str) -> Option<i64> {
        match value(attributes, key) {
            Some(Value::I64(n)) => Some(n),
            _ => None,
        }
    }

    /// An HTTP API's payload 1.0 gives its route key in `requestContext`, and on a
    /// `$default` route a `resource` that is the raw path: no route then, or every
    /// path would be one. A WebSocket API's event comes over `wss` and has no route.
    #[test]
    fn payload_1_routes_and_websockets() {
        let v1 = |route_key: &str| {
            format!(
                r#"{{"version":"1.0","resource":"/my/path","path":"/my/path","httpMethod":"GET","requestContext":{{"routeKey":"{route_key}","domainName":"id.execute-api.us-east-1.amazonaws.com","protocol":"HTTP/1.1"}}}}"#
            )
        };
        assert_eq!(text(&attributes(&v1("$default"), 2048), "http.route"), None);
        assert_eq!(
            text(&attributes(&v1("GET /my/{name}"), 2048), "http.route").as_deref(),
            Some("/my/{name}")
        );
        let websocket = r#"{"requestContext":{"routeKey":"$connect","eventType":"CONNECT","domainName":"ws.execute-api.eu-west-1.amazonaws.com","connectionId":"a="},"headers":{"Host":"ws.execute-api.eu-west-1.amazonaws.com","X-Forwarded-Proto":"https"}}"#;
        let a = attributes(websocket, 2048);
        assert_eq!(text(&a, "url.scheme").as_deref(), Some("wss"));
        assert_eq!(text(&a, "http.route"), None);
        assert_eq!(number(&a, "server.port"), Some(443));
    }

    /// The server's port: 443 for API Gateway's and function URLs' domains, the
    /// `Host` header's for a load balancer, else its scheme's; the client from
    /// `X-Forwarded-For` where the event names none; HTTP/2 as `2`.
    #[test]
    fn ports_forwarded_clients_and_protocol_versions() {
        assert_eq!(
            number(&attributes(HTTP_API, 2048), "server.port"),
            Some(443)
        );
        let a = attributes(LOAD_BALANCER, 2048);
        assert_eq!(number(&a, "server.port"), Some(80));
        let balanced = r#"{"httpMethod":"GET","path":"/","requestContext":{"elb":{}},"multiValueHeaders":{"host":["[2001:db8::1]:8443"],"x-forwarded-proto":["https"],"X-Forwarded-For":["198.51.100.7, 10.0.0.2"]}}"#;
        let a = attributes(balanced, 2048);
        assert_eq!(text(&a, "server.address").as_deref(), Some("2001:db8::1"));
        assert_eq!(number(&a, "server.port"), Some(8443));
        assert_eq!(text(&a, "client.address").as_deref(), Some("198.51.100.7"));
        for (given, version) in [("HTTP/2.0", "2"), ("HTTP/3.0", "3"), ("HTTP/1.0", "1.0")] {
            let event = format!(r#"{{"requestContext":{{"http":{{"protocol":"{given}"}}}}}}"#);
            assert_eq!(
                text(&attributes(&event, 2048), "network.protocol.version").as_deref(),
                Some(version)
            );
        }
    }

    /// `X-Forwarded-For`'s first entry is the client where it is an address (its port
    /// taken off); `X-Forwarded-Proto`'s first value, in lower case, the scheme.
    #[test]
    fn forwarded_headers_are_read_as_an_address_and_a_scheme() {
        let balanced = |xff: &str, proto: &str| {
            format!(
                r#"{{"httpMethod":"GET","path":"/","headers":{{"host":"lb.example","x-forwarded-for":"{xff}","x-forwarded-proto":"{proto}"}}}}"#
            )
        };
        for (xff, client) in [
            ("203.0.113.9:5123, 10.0.0.1", Some("203.0.113.9")),
            ("[2001:db8::7]:443", Some("2001:db8::7")),
            ("2001:db8::7", Some("2001:db8::7")),
            ("unknown, 10.0.0.1", None),
            ("client.example", None),
            ("", None),
        ] {
            let a = attributes(&balanced(xff, "http"), 2048);
            assert_eq!(text(&a, "client.address").as_deref(), client, "{xff}");
        }
        let a = attributes(&balanced("203.0.113.9", "HTTPS, http"), 2048);
        assert_eq!(text(&a, "url.scheme").as_deref(), Some("https"));
        assert_eq!(number(&a, "server.port"), Some(443));
        // A WebSocket API's custom route key shaped like an HTTP one is still no route.
        let websocket = r#"{"requestContext":{"routeKey":"send /x","eventType":"MESSAGE","domainName":"ws.example"}}"#;
        assert_eq!(text(&attributes(websocket, 2048), "http.route"), None);
        // Header names with escapes are read as their text.
        let escaped = r#"{"headers":{"User\u002dAgent":"ua"}}"#;
        assert_eq!(
            text(&attributes(escaped, 2048), "user_agent.original").as_deref(),
            Some("ua")
        );
    }
}

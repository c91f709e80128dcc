//! `HttpTelemetryLayer`'s server span and metrics follow the OpenTelemetry HTTP server
//! conventions for each way a request ends: answered (a 5xx is an error with
//! `error.type`, a 4xx is not), failed without a response, or panicked while
//! answering; a request without a known route, a method outside the standard set, a
//! query with credentials, and a route a router inside the layer names on its
//! response. One test: telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod handler;
mod spans_seen;
mod telemetry;

use coldstart_bootstrap::Settings;
use coldstart_exporters::http::{ClientAddress, HttpTelemetryLayer};
use coldstart_exporters::metrics::render;
use handler::Handler;
use http::{Method, Request, StatusCode};
use spans_seen::{SEEN, Seen};
use tower_layer::Layer as _;
use tower_service::Service;

/// The sample of `http_requests_total` with `labels`, if any.
fn requests(labels: &str) -> Option<f64> {
    let prefix = format!("http_requests_total{{{labels}}} ");
    render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
}

/// The span whose `url.path` is `path`.
fn span_of(seen: &[Seen], path: &str) -> Seen {
    seen.iter()
        .find(|s| s.attributes.get("url.path").map(String::as_str) == Some(path))
        .unwrap_or_else(|| panic!("no span of {path}: {seen:#?}"))
        .clone()
}

#[test]
fn each_way_a_request_ends_gets_its_span_and_metrics() {
    let telemetry = telemetry::installed(vec![
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
        (
            "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
            "GET,POST,PROPFIND".to_owned(),
        ),
    ]);

    coldstart_runtime::block_on(&Settings::NONE, async move {
        let service = HttpTelemetryLayer::new().layer(Handler);
        let behind_tls = HttpTelemetryLayer::new().scheme("https").layer(Handler);
        let send = |mut service: coldstart_exporters::http::HttpTelemetry<Handler>,
                    request: Request<()>| {
            // On a task of its own, as a server runs each connection: a panic ends
            // the task, not the test.
            tokio::spawn(async move { service.call(request).await })
        };
        let call = |method: Method, uri: &str| {
            let request = Request::builder().method(method).uri(uri).body(()).unwrap();
            send(service.clone(), request)
        };
        let with_host =
            |uri: &str, host: &str| Request::get(uri).header("host", host).body(()).unwrap();
        let mut ok = with_host("/ok?x=1&sig=abc&AWSAccessKeyId=K&y", "[::1]:8080");
        ok.headers_mut()
            .insert("user-agent", http::HeaderValue::from_static("probe/1.0"));
        *ok.version_mut() = http::Version::HTTP_2;
        // Who connected, as a hyper server says (an IPv4 client of a dual-stack
        // listener).
        let peer = "[::ffff:203.0.113.9]:51234".parse().unwrap();
        ok.extensions_mut().insert(ClientAddress(peer));
        let ok = send(service.clone(), ok).await;
        assert_eq!(ok.unwrap().unwrap().status(), StatusCode::OK);
        send(behind_tls.clone(), with_host("/down", "api.example"))
            .await
            .unwrap()
            .unwrap();
        send(service.clone(), with_host("/missing", "bad host"))
            .await
            .unwrap()
            .unwrap();
        send(service.clone(), with_host("/port", "api.example:99999"))
            .await
            .unwrap()
            .unwrap();
        call(Method::GET, "/routed/7").await.unwrap().unwrap();
        let propfind = Method::from_bytes(b"PROPFIND").unwrap();
        call(propfind, "/dav").await.unwrap().unwrap();
        let brew = Method::from_bytes(b"BREW").unwrap();
        call(brew, "http://pot.example/brew")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            call(Method::GET, "/fail").await.unwrap().unwrap_err(),
            "no database"
        );
        assert!(call(Method::POST, "/panic").await.unwrap_err().is_panic());
        assert!(
            call(Method::PUT, "/panic-in-call")
                .await
                .unwrap_err()
                .is_panic()
        );

        // A request whose answer is dropped before it comes (the client went away):
        // counted as 499, and out of the in-flight gauge (checked at the end).
        let mut hanging = service.clone();
        let request = Request::builder()
            .method(Method::DELETE)
            .uri("/hang")
            .body(())
            .unwrap();
        let answer = hanging.call(request);
        drop(answer);

        // A route function of the program's that panics: a request that panicked.
        let panicking_route = HttpTelemetryLayer::new()
            .route(|path| (path == "/route-panics").then(|| panic!("a route function's bug")))
            .layer(Handler);
        let propfind = Method::from_bytes(b"PROPFIND").unwrap();
        let request = Request::builder()
            .method(propfind)
            .uri("/route-panics")
            .body(())
            .unwrap();
        assert!(send(panicking_route, request).await.unwrap_err().is_panic());

        // A head whose path, query and `User-Agent` are as long as the client likes;
        // the query's credential starts just before the cut.
        let query = format!("q={}&sig={}", "q".repeat(2040), "x".repeat(30_000));
        let long = format!("/long/{}?{query}", "p".repeat(30_000));
        let mut long = Request::get(long).body(()).unwrap();
        let agent = http::HeaderValue::from_str(&"a".repeat(100_000)).unwrap();
        long.headers_mut().insert("user-agent", agent);
        send(service.clone(), long).await.unwrap().unwrap();

        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        telemetry::until(|| SEEN.lock().unwrap().len() >= 12).await;
    });
    let seen = SEEN.lock().unwrap().clone();
    let text = |span: &Seen, key: &str| span.attributes.get(key).cloned();

    // No route known: named by the method alone, with no `http.route`; the query's
    // credentials are not exported.
    let ok = span_of(&seen, "/ok");
    assert_eq!(ok.name, "GET");
    assert_eq!(text(&ok, "http.route"), None);
    assert_eq!(
        text(&ok, "url.query").as_deref(),
        Some("x=1&sig=REDACTED&AWSAccessKeyId=REDACTED&y")
    );
    assert_eq!(
        text(&ok, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!((text(&ok, "error.type"), &ok.error), (None, &None));
    // Where the server is, from `Host`: an IPv6 address without its brackets.
    assert_eq!(text(&ok, "url.scheme").as_deref(), Some("http"));
    assert_eq!(text(&ok, "server.address").as_deref(), Some("::1"));
    assert_eq!(text(&ok, "server.port").as_deref(), Some("8080"));
    // Which HTTP, and the caller's own name.
    assert_eq!(text(&ok, "network.protocol.version").as_deref(), Some("2"));
    assert_eq!(
        text(&ok, "user_agent.original").as_deref(),
        Some("probe/1.0")
    );
    // Who connected, where the server said: the peer, an IPv4 address as such.
    assert_eq!(text(&ok, "client.address").as_deref(), Some("203.0.113.9"));
    assert_eq!(
        text(&ok, "network.peer.address").as_deref(),
        Some("203.0.113.9")
    );
    assert_eq!(text(&ok, "network.peer.port").as_deref(), Some("51234"));
    let unsaid = span_of(&seen, "/down");
    assert_eq!(text(&unsaid, "client.address"), None, "{unsaid:?}");
    // Kept to 2048 characters each, where no OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT is set:
    // kept whole, a queue of such spans held hundreds of MB.
    let long = seen
        .iter()
        .find(|s| {
            s.attributes
                .get("url.path")
                .is_some_and(|p| p.starts_with("/long/"))
        })
        .unwrap();
    for key in ["url.path", "url.query", "user_agent.original"] {
        assert_eq!(text(long, key).map(|v| v.len()), Some(2048), "{key}");
    }
    // Scrubbed, then cut: the credential's value is not there, and `REDACTED` does
    // not take the query past the limit.
    let query = text(long, "url.query").unwrap();
    assert!(query.ends_with("&sig=R") && !query.contains('x'), "{query}");
    let plain = span_of(&seen, "/missing");
    assert_eq!(
        text(&plain, "network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert_eq!(text(&plain, "user_agent.original"), None);
    // Behind TLS, as the layer was told: the scheme's port when `Host` names none.
    let down = span_of(&seen, "/down");
    assert_eq!(text(&down, "url.scheme").as_deref(), Some("https"));
    assert_eq!(
        text(&down, "server.address").as_deref(),
        Some("api.example")
    );
    assert_eq!(text(&down, "server.port").as_deref(), Some("443"));
    // A port that is no port number: the address alone.
    let port = span_of(&seen, "/port");
    assert_eq!(
        text(&port, "server.address").as_deref(),
        Some("api.example")
    );
    assert_eq!(text(&port, "server.port"), None);
    // A `Host` that is no authority, or none: no server attributes.
    let missing = span_of(&seen, "/missing");
    assert_eq!(text(&missing, "server.address"), None);
    assert_eq!(text(&span_of(&seen, "/routed/7"), "server.port"), None);

    // A 5xx is the server's error, a 4xx the caller's.
    let down = span_of(&seen, "/down");
    assert_eq!(text(&down, "error.type").as_deref(), Some("503"));
    assert_eq!(down.error.as_deref(), Some("db down"), "{down:?}");
    let missing = span_of(&seen, "/missing");
    assert_eq!(
        (text(&missing, "error.type"), &missing.error),
        (None, &None)
    );

    // The route a router inside the layer put on its response names the span.
    let routed = span_of(&seen, "/routed/7");
    assert_eq!(routed.name, "GET /routed/{n}");
    assert_eq!(text(&routed, "http.route").as_deref(), Some("/routed/{n}"));

    // A method `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` names, and one it does not.
    let dav = span_of(&seen, "/dav");
    assert_eq!(dav.name, "PROPFIND");
    assert_eq!(
        text(&dav, "http.request.method").as_deref(),
        Some("PROPFIND")
    );
    assert_eq!(text(&dav, "http.request.method_original"), None);
    assert_eq!(
        requests(r#"method="PROPFIND",route="unmatched",status="200""#),
        Some(1.0)
    );
    let brew = span_of(&seen, "/brew");
    assert_eq!(brew.name, "HTTP");
    assert_eq!(
        text(&brew, "http.request.method").as_deref(),
        Some("_OTHER")
    );
    assert_eq!(
        text(&brew, "http.request.method_original").as_deref(),
        Some("BREW")
    );
    assert_eq!(text(&brew, "url.scheme").as_deref(), Some("http"));
    assert_eq!(
        text(&brew, "server.address").as_deref(),
        Some("pot.example")
    );
    assert_eq!(text(&brew, "server.port").as_deref(), Some("80"));

    // No response: no status code, an error of its kind.
    let fail = span_of(&seen, "/fail");
    assert_eq!(text(&fail, "http.response.status_code"), None);
    assert_eq!(text(&fail, "error.type").as_deref(), Some("_OTHER"));
    assert_eq!(
        fail.error.as_deref(),
        Some("the service failed without a response")
    );
    for path in ["/panic", "/panic-in-call"] {
        let panicked = span_of(&seen, path);
        assert_eq!(text(&panicked, "error.type").as_deref(), Some("panic"));
        assert_eq!(
            panicked.error.as_deref(),
            Some("the service panicked while answering")
        );
    }
    assert_eq!(
        requests(r#"method="_OTHER",route="unmatched",status="500""#),
        Some(1.0),
        "the panic before the service's future"
    );
    let hang = span_of(&seen, "/hang");
    assert_eq!(text(&hang, "error.type").as_deref(), Some("cancelled"));
    assert_eq!(
        requests(r#"method="_OTHER",route="unmatched",status="499""#),
        Some(1.0),
        "the request dropped unanswered"
    );
    // Counted too where the panic came before the record was made (it was not).
    assert_eq!(
        requests(r#"method="PROPFIND",route="unmatched",status="500""#),
        Some(1.0),
        "the route function's panic"
    );

    // The metrics: labelled with the route the response named, and a request without
    // a response counted as a 500, a panic included.
    assert_eq!(
        requests(r#"method="GET",route="/routed/{n}",status="200""#),
        Some(1.0)
    );
    assert_eq!(
        requests(r#"method="GET",route="unmatched",status="500""#),
        Some(1.0)
    );
    assert_eq!(
        requests(r#"method="POST",route="unmatched",status="500""#),
        Some(1.0),
        "the panic"
    );
    assert_eq!(
        render()
            .lines()
            .find_map(|l| l.strip_prefix("http_requests_in_flight ")),
        Some("0")
    );
}

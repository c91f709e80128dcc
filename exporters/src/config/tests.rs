#![allow(clippy::unwrap_used)]
use std::path::PathBuf;

use super::reader::percent_decode;
use super::*;

fn config(vars: &[(&str, &str)]) -> (Config, Vec<ConfigError>) {
    Config::from(&Env::fixed(vars.iter().copied()))
}

#[test]
fn defaults_follow_the_specification() {
    let (c, errors) = config(&[]);
    assert!(errors.is_empty());
    assert_eq!(c.metrics_addr, DEFAULT_METRICS_ADDR.parse().ok());
    assert!(c.traces && c.export_traces && c.trace_context && c.baggage);
    assert_eq!(c.sampler, Sampler::ParentBasedAlwaysOn);
    assert_eq!(c.queue, Queue::default());
    assert!(c.push.is_none());
}

#[test]
fn known_http_methods_replace_the_standard_ones_and_a_bad_list_is_named() {
    let (c, errors) = config(&[(
        "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
        "GET, POST,PROPFIND,",
    )]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        c.http_known_methods.as_deref(),
        Some(&["GET".to_owned(), "POST".to_owned(), "PROPFIND".to_owned()][..])
    );
    for bad in ["GET,BAD METHOD", ",", "GET,(x)"] {
        let (c, errors) = config(&[("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", bad)]);
        assert_eq!(c.http_known_methods, None, "{bad}");
        assert_eq!(
            errors[0].to_string(),
            format!(
                "set OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS to comma-separated HTTP methods such as `GET,POST,PROPFIND` (case-sensitive tokens, at most 64), which replace the standard nine, got `{bad}`; using the default"
            )
        );
    }
    let many = (0..65)
        .map(|i| format!("M{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let (c, _) = config(&[("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", many.as_str())]);
    assert_eq!(c.http_known_methods, None);
}

#[test]
fn every_bad_value_is_named_and_falls_back() {
    let (c, errors) = config(&[
        ("COLDSTART_METRICS_ADDR", "localhost"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("OTEL_PROPAGATORS", "tracecontext,b3"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-1"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
    ]);
    let keys: Vec<_> = errors.iter().map(|e| e.key).collect();
    assert_eq!(
        keys,
        [
            "COLDSTART_METRICS_ADDR",
            "OTEL_TRACES_EXPORTER",
            "OTEL_TRACES_SAMPLER_ARG",
            "OTEL_PROPAGATORS",
            "OTEL_BSP_MAX_QUEUE_SIZE"
        ]
    );
    assert_eq!(
        errors[3].to_string(),
        "set OTEL_PROPAGATORS to a comma-separated list of `tracecontext`, `baggage`, or `none`, got `tracecontext,b3`; using the known ones"
    );
    assert!(
        c.trace_context && !c.baggage,
        "only what the list names and coldstart knows"
    );
    let (none_known, refused) = config(&[("OTEL_PROPAGATORS", "b3,jaeger")]);
    assert!(refused[0].to_string().ends_with("using the default"));
    assert!(none_known.trace_context && none_known.baggage);
    assert_eq!(c.sampler, Sampler::ParentBasedTraceIdRatio(1.0));
    assert_eq!(c.metrics_addr, DEFAULT_METRICS_ADDR.parse().ok());
    assert!(c.traces);
}

/// `none` means no exporter, as the specification says, not no tracing: spans are
/// still made and propagated.
#[test]
fn no_trace_exporter_keeps_the_tracer_and_the_propagators() {
    let (c, errors) = config(&[("OTEL_TRACES_EXPORTER", "none")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(c.traces && !c.export_traces && c.trace_context && c.baggage);
}

#[test]
fn switches_and_push() {
    let (c, errors) = config(&[
        ("COLDSTART_METRICS_ADDR", "off"),
        ("OTEL_SDK_DISABLED", "TRUE"),
        ("OTEL_PROPAGATORS", "none"),
        ("OTEL_SERVICE_NAME", "checkout"),
        ("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091"),
        ("COLDSTART_METRICS_PUSH_INTERVAL", "2s"),
        ("OTEL_TRACES_SAMPLER", "coldstart_dynamic"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.metrics_addr, None);
    assert!(!c.traces && !c.export_traces && !c.trace_context && !c.baggage);
    let push = c.push.unwrap();
    assert_eq!(
        (push.job.as_str(), push.interval),
        ("checkout", Duration::from_secs(2))
    );
    assert_eq!(c.sampler, Sampler::Dynamic(0.5));
}

#[test]
fn push_grouping_labels_are_prometheus_names_after_the_job() {
    let url = ("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091");
    let (c, errors) = config(&[
        url,
        (
            "COLDSTART_METRICS_PUSH_GROUPING",
            "instance=host%2C1, zone=eu",
        ),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        c.push.unwrap().grouping,
        [
            ("instance".to_owned(), "host,1".to_owned()),
            ("zone".to_owned(), "eu".to_owned())
        ]
    );
    for bad in [
        "job=x",
        "__x=1",
        "le=1",
        "quantile=0.5",
        "1a=b",
        "a-b=c",
        "a=1,a=2",
        "novalue",
    ] {
        let (c, errors) = config(&[url, ("COLDSTART_METRICS_PUSH_GROUPING", bad)]);
        assert_eq!(errors.len(), 1, "{bad}");
        assert_eq!(errors[0].key, "COLDSTART_METRICS_PUSH_GROUPING");
        let said = errors[0].to_string();
        assert!(said.contains("not `job`"), "{said}");
        // Every rule is said, the one a label given twice breaks too.
        assert!(said.contains("each label once"), "{said}");
        assert!(c.push.unwrap().grouping.is_empty(), "{bad}");
    }
}

#[test]
fn a_refused_value_with_a_line_break_is_said_on_one_line() {
    let (_, errors) = config(&[("OTEL_BSP_MAX_QUEUE_SIZE", "1\n2")]);
    let text = errors[0].to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("got `1\\n2`"), "{text}");
}

#[test]
fn a_job_that_pushes_listens_only_when_told_to() {
    let url = ("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091");
    let (c, errors) = config(&[url]);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(c.push.is_some());
    assert_eq!(c.metrics_addr, None, "pushing, and no address given");
    let (c, _) = config(&[url, ("COLDSTART_METRICS_ADDR", "127.0.0.1:9100")]);
    assert_eq!(
        c.metrics_addr,
        "127.0.0.1:9100".parse().ok(),
        "both, as told"
    );
    // An empty `service.name` names no job: the gateway refuses an empty one.
    let (c, _) = config(&[url, ("OTEL_RESOURCE_ATTRIBUTES", "service.name=")]);
    assert!(!c.push.unwrap().job.is_empty());
    // An address refused falls back to the default, which for a job that pushes
    // is no listener; a push URL refused leaves the listener's default.
    let (c, errors) = config(&[url, ("COLDSTART_METRICS_ADDR", "localhost")]);
    assert_eq!((c.metrics_addr, errors.len()), (None, 1));
    let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", "ftp://gateway")]);
    assert_eq!(errors.len(), 1);
    assert_eq!(c.metrics_addr, DEFAULT_METRICS_ADDR.parse().ok());
}

#[test]
fn a_push_url_must_be_http_with_a_host() {
    for url in ["ftp://gateway", "http://:9091", "http://ci:pw@:9091"] {
        let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", url)]);
        assert!(c.push.is_none(), "{url}");
        assert_eq!(errors[0].key, "COLDSTART_METRICS_PUSH_URL", "{url}");
    }
    // The other push settings are checked beside a refused URL: their errors came
    // one at a time, each only once the URL was mended.
    let (_, errors) = config(&[
        ("COLDSTART_METRICS_PUSH_URL", "gateway:9091"),
        ("COLDSTART_METRICS_PUSH_INTERVAL", "5x"),
        ("COLDSTART_METRICS_PUSH_GROUPING", "job=x"),
    ]);
    let keys: Vec<&str> = errors.iter().map(|e| e.key).collect();
    assert_eq!(
        keys,
        [
            "COLDSTART_METRICS_PUSH_URL",
            "COLDSTART_METRICS_PUSH_INTERVAL",
            "COLDSTART_METRICS_PUSH_GROUPING"
        ]
    );
    // Without a URL they are not read: nothing pushes.
    let (_, errors) = config(&[("COLDSTART_METRICS_PUSH_INTERVAL", "5x")]);
    assert!(errors.is_empty(), "{errors:?}");
}

/// CloudWatch refuses custom namespaces under `AWS/`, and any starting with `:` (its
/// pattern is `[^:].*`): every EMF line would be lost.
#[test]
fn an_emf_namespace_cloudwatch_keeps_for_itself_is_refused() {
    for refused in ["AWS/Lambda", ":shop"] {
        let (c, errors) = config(&[("COLDSTART_EMF_NAMESPACE", refused)]);
        assert_eq!(errors[0].key, "COLDSTART_EMF_NAMESPACE");
        assert!(
            errors[0]
                .to_string()
                .contains("not starting with `:` or with `AWS/`"),
            "{}",
            errors[0]
        );
        assert_eq!(c.lambda.emf_namespace.as_deref(), Some("coldstart"));
    }
    for taken in ["Shop/AWS", "shop:orders"] {
        let (c, errors) = config(&[("COLDSTART_EMF_NAMESPACE", taken)]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.lambda.emf_namespace.as_deref(), Some(taken));
    }
}

/// A fragment hid the signal's path: `http://c:4318/#x` became
/// `http://c:4318/#x/v1/traces`, and spans went to `/`.
#[test]
fn an_endpoint_with_a_fragment_is_refused() {
    for key in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        let (c, errors) = config(&[(key, "http://c:4318/#x")]);
        assert_eq!(errors[0].key, key);
        assert!(errors[0].to_string().contains("#fragment"), "{}", errors[0]);
        assert_eq!(c.otlp_endpoint, None);
    }
}

/// `http::Uri` takes an empty host (`http://:4318`); every export then failed, after
/// its retries, where a refused value keeps the default.
#[test]
fn an_endpoint_without_a_host_is_refused() {
    for key in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        for url in ["http://:4318", "https://:4318/v1/traces"] {
            let (c, errors) = config(&[(key, url)]);
            assert_eq!(errors[0].key, key, "{url}");
            assert_eq!(c.otlp_endpoint, None, "{url}");
        }
    }
}

/// The exporter sends nothing of an endpoint's user info: refused by name, never
/// repeated, instead of every batch failing with a 401.
#[test]
fn an_endpoint_with_user_info_is_refused_and_not_repeated() {
    for key in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        // A password with `/` ends the authority early (base64 holds them).
        for url in [
            "https://ci:s3cret@collector:4318",
            "https://ci:s3cr/t@collector:4318",
        ] {
            let (c, errors) = config(&[(key, url)]);
            assert_eq!(errors[0].key, key);
            let said = errors[0].to_string();
            assert!(said.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{said}");
            assert!(!said.contains("s3cr"), "{said}");
            assert_eq!(c.otlp_endpoint, None);
        }
    }
}

/// `http::Uri` takes a port it cannot read, and a client then went to port 80.
#[test]
fn a_url_with_a_port_that_is_no_port_is_refused() {
    for bad in [
        "http://collector:70000",
        "http://collector:4318x",
        "http://[::1]:0",
    ] {
        let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad)]);
        assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "{bad}");
        assert_ne!(c.otlp_endpoint.as_deref(), Some(bad));
        let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", bad)]);
        assert_eq!(errors[0].key, "COLDSTART_METRICS_PUSH_URL", "{bad}");
        assert!(c.push.is_none());
    }
    let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://[::1]:4318")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.otlp_endpoint.as_deref(), Some("http://[::1]:4318"));
}

#[test]
fn a_push_password_is_never_repeated() {
    let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", "ftp://ci:s3cret@gateway/x")]);
    assert!(c.push.is_none());
    let message = errors[0].to_string();
    assert!(message.contains("ftp://<not shown>@gateway/x"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    // A password with `/` or `#` in it, as base64 may have, and an endpoint's.
    for (key, url) in [
        ("COLDSTART_METRICS_PUSH_URL", "http://ci:pa/s3cret@gw:9091"),
        ("COLDSTART_METRICS_PUSH_URL", "http://ci:pa#s3cret@gw:9091"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://ci:s3cret@collector:0",
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://ci:pa/s3cret@collector:99999",
        ),
    ] {
        let (_, errors) = config(&[(key, url)]);
        let message = errors[0].to_string();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(message.contains("<not shown>@"), "{message}");
    }
    let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", "http://ci:s3cret@gw:9091")]);
    assert!(errors.is_empty());
    let push = c.push.unwrap();
    assert_eq!(push.url.to_string(), "http://gw:9091/");
    assert_eq!(
        push.credentials.unwrap(),
        Credentials("ci:s3cret".to_owned())
    );
}

#[test]
fn the_protocol_is_http_unless_grpc_is_built_in() {
    let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
    if cfg!(feature = "grpc") {
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.protocol, Protocol::Grpc);
    } else {
        assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_PROTOCOL");
        assert!(errors[0].accepts.contains("`grpc` feature"));
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
    }
    let (c, errors) = config(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
    ]);
    assert!(errors.is_empty(), "the traces variable wins: {errors:?}");
    assert_eq!(c.protocol, Protocol::HttpProtobuf);
    let (_, errors) = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
    assert_eq!(errors[0].value, "http/json");
}

#[test]
fn compression_is_none_unless_gzip_is_asked_for_and_built_in() {
    assert_eq!(config(&[]).0.compression, Compression::None);
    let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]);
    if cfg!(feature = "gzip") {
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.compression, Compression::Gzip);
    } else {
        assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_COMPRESSION");
        assert!(errors[0].accepts.contains("`gzip` feature"), "{errors:?}");
        assert_eq!(c.compression, Compression::None);
    }
    let (c, errors) = config(&[
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "NONE"),
    ]);
    assert!(errors.is_empty(), "the traces variable wins: {errors:?}");
    assert_eq!(c.compression, Compression::None);
    let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd")]);
    assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
    assert_eq!(errors[0].value, "zstd");
    assert!(errors[0].accepts.contains("`none`"), "{errors:?}");
    assert_eq!(c.compression, Compression::None);
}

#[test]
fn a_client_certificate_needs_its_key() {
    let (c, errors) = config(&[
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "ca.pem"),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "client.pem"),
    ]);
    if cfg!(feature = "tls") {
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE");
        assert_eq!(errors[0].instead, "no client certificate is sent");
        assert_eq!(c.otlp_tls.ca, Some(PathBuf::from("ca.pem")));
        assert_eq!((c.otlp_tls.certificate, c.otlp_tls.key), (None, None));
        // Named as given, through the traces-only name (which wins over the
        // general one), asking for the pair of the same family.
        for vars in [
            &[("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "client.key")][..],
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "client.key"),
                ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "general.key"),
            ],
        ] {
            let (_, errors) = config(vars);
            assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY");
            assert_eq!(errors[0].value, "client.key");
            assert!(
                errors[0]
                    .accepts
                    .contains("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE")
            );
        }
        let (_, errors) = config(&[("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "client.pem")]);
        assert_eq!(
            errors[0].key,
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"
        );
    } else {
        assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_CERTIFICATE");
        assert!(errors[0].accepts.contains("`tls` feature"));
        assert_eq!(c.otlp_tls, ClientTls::default());
    }
}

#[test]
fn metrics_asked_to_use_tls_are_never_served_in_the_clear() {
    let (c, errors) = config(&[("COLDSTART_METRICS_TLS_CERT", "server.pem")]);
    let error = &errors[0];
    assert_eq!(error.instead, "/metrics is not served");
    assert_eq!((c.metrics_addr, c.metrics_tls), (None, None));
    if cfg!(feature = "tls") {
        assert_eq!(error.key, "COLDSTART_METRICS_TLS_KEY");
        // What asked for TLS is named: a client CA alone named only the missing
        // certificate, with an empty value the user never gave.
        assert!(
            error
                .to_string()
                .contains("(it is not set, and COLDSTART_METRICS_TLS_CERT is)"),
            "{error}"
        );
        let (_, errors) = config(&[("COLDSTART_METRICS_TLS_CLIENT_CA", "/ca.pem")]);
        assert!(
            errors[0].to_string().contains(
                "set COLDSTART_METRICS_TLS_CERT to a PEM file (TLS for /metrics needs a certificate and its key), got `` (it is not set, and COLDSTART_METRICS_TLS_CLIENT_CA is)"
            ),
            "{}",
            errors[0]
        );
        let (c, errors) = config(&[
            ("COLDSTART_METRICS_TLS_CERT", "server.pem"),
            ("COLDSTART_METRICS_TLS_KEY", "server.key"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(c.metrics_addr.is_some());
        assert_eq!(
            c.metrics_tls.map(|t| (t.certificate, t.client_ca)),
            Some((PathBuf::from("server.pem"), None))
        );
    } else {
        assert_eq!(error.key, "COLDSTART_METRICS_TLS_CERT");
        assert_eq!(error.value, "server.pem");
    }
}

#[test]
fn the_batch_never_exceeds_the_queue() {
    let (c, _) = config(&[("OTEL_BSP_MAX_QUEUE_SIZE", "10")]);
    assert_eq!((c.queue.max_spans, c.queue.batch), (10, 10));
}

#[test]
fn span_limits_are_read_each_from_its_variable() {
    let (c, errors) = config(&[
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "0"),
        ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "7"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "-1"),
    ]);
    let expected = SpanLimits {
        attributes: 0,
        link_attributes: 7,
        ..SpanLimits::default()
    };
    assert_eq!(c.span_limits, expected);
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "set OTEL_SPAN_EVENT_COUNT_LIMIT to a whole number from 0 to 1048576, got `-1`; using the default"
        ]
    );
}

#[test]
fn the_general_attribute_limit_applies_where_a_model_sets_none() {
    let (c, errors) = config(&[
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "5"),
        ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "9"),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    let expected = SpanLimits {
        any_attributes: 5,
        attributes: 5,
        event_attributes: 9,
        link_attributes: 5,
        ..SpanLimits::default()
    };
    assert_eq!(c.span_limits, expected);
    // The value length limit: none by default, the general one where the span's is
    // unset.
    assert_eq!(c.span_limits.value_length, None);
    let (c, _) = config(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64")]);
    assert_eq!(c.span_limits.value_length, Some(64));
    let (c, errors) = config(&[
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "lots"),
    ]);
    assert_eq!(errors[0].key, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT");
    assert_eq!(c.span_limits.value_length, Some(64));
}

fn with_file(text: &str, vars: &[(&str, &str)]) -> (Config, Vec<ConfigError>) {
    let file = coldstart_bootstrap::config::ConfigFile::parse("coldstart.toml", text).unwrap();
    Config::from(&Env::fixed(vars.iter().copied()).with_file(Box::leak(Box::new(file))))
}

#[test]
fn the_file_sets_what_the_environment_does_not() {
    let (c, errors) = with_file(
        "[coldstart]\nmetrics_addr = \"0.0.0.0:9100\"\n[otel]\nservice_name = \"from-file\"\ntraces_sampler = \"always_off\"\nbsp_max_queue_size = \"many\"\n",
        &[("OTEL_SERVICE_NAME", "from-env")],
    );
    assert_eq!(c.metrics_addr, "0.0.0.0:9100".parse().ok());
    assert_eq!(c.service_name, "from-env", "the environment beats the file");
    assert_eq!(c.sampler, Sampler::AlwaysOff);
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "set OTEL_BSP_MAX_QUEUE_SIZE to a whole number from 1 to 1048576, got `many` (coldstart.toml line 6, `[otel] bsp_max_queue_size`); using the default"
        ]
    );
}

#[test]
fn endpoints_follow_the_specification() {
    let endpoint = |vars: &[(&str, &str)]| config(vars).0.otlp_endpoint;
    assert_eq!(endpoint(&[]), None);
    assert_eq!(
        endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).as_deref(),
        Some("http://collector:4318/v1/traces")
    );
    assert_eq!(
        endpoint(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://traces.example/custom"
            ),
        ])
        .as_deref(),
        Some("https://traces.example/custom"),
        "the signal's own variable is used as given"
    );
    let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
    assert_eq!(
        (c.otlp_endpoint, errors[0].key),
        (None, "OTEL_EXPORTER_OTLP_ENDPOINT")
    );
}

#[test]
fn headers_from_the_file_are_decoded_and_never_echoed() {
    let (c, errors) = with_file(
        "[otel]\nexporter_otlp_headers = \"authorization=Bearer%20abc,x-tenant=7\"\n",
        &[],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        c.otlp_headers,
        [
            ("authorization".to_owned(), "Bearer abc".to_owned()),
            ("x-tenant".to_owned(), "7".to_owned())
        ]
    );
    let (_, errors) = config(&[("OTEL_EXPORTER_OTLP_HEADERS", "token-without-value-secret")]);
    assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_HEADERS");
    assert!(!errors[0].to_string().contains("secret"), "{}", errors[0]);
}

/// A refused headers value says what is wrong, by the pair's place and name, and
/// never a value: all of these were one line with nothing but `<not shown>`.
#[test]
fn a_refused_headers_value_says_what_is_wrong_without_its_values() {
    for (raw, why) in [
        (
            "x-api-key=%zz,tenant=acme",
            "(pair 1, `x-api-key`: a `%` not followed by two hex digits)",
        ),
        ("tenant=acme,token-secret", "(pair 2 has no `=`)"),
        ("=secret", "(pair 1 has no name)"),
        (
            "Bearer secret=x",
            "(pair 1's name is not a header name (letters, digits, `-` and `_`))",
        ),
        (
            "a=b,x-key=%ff",
            "(pair 2, `x-key`: its value decodes to bytes that are not UTF-8)",
        ),
        (
            "x-key=%0a",
            "(pair 1, `x-key`: its value holds a character no header value may (a control character))",
        ),
    ] {
        let (_, errors) = config(&[("OTEL_EXPORTER_OTLP_HEADERS", raw)]);
        let said = errors[0].to_string();
        assert!(
            said.contains(&format!("got `<not shown>` {why}; no headers")),
            "{raw}: {said}"
        );
        for secret in ["secret", "acme", "zz"] {
            assert!(!said.contains(secret), "{raw}: {said}");
        }
    }
}

/// Of two settings for one thing, the one from the layer above wins, however
/// specific the other: a file's value never masks a variable an operator set.
#[test]
fn a_variable_overrides_a_more_specific_setting_in_the_file() {
    let file = "[otel]\n\
        service_name = \"from-file\"\n\
        exporter_otlp_traces_endpoint = \"http://file:4318/v1/traces\"\n\
        span_attribute_count_limit = 5\n\
        [coldstart]\n\
        log_filter = \"warn\"\n";
    let (c, errors) = with_file(
        file,
        &[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-variable"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://variable:4318"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "9"),
            ("RUST_LOG", "debug"),
        ],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.service_name, "from-variable");
    assert_eq!(
        c.otlp_endpoint.as_deref(),
        Some("http://variable:4318/v1/traces")
    );
    assert_eq!(c.span_limits.attributes, 9);
    assert_eq!(c.log_filter, "debug");
    // Without the variables, the file's values stand.
    let (c, errors) = with_file(file, &[]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.service_name, "from-file");
    assert_eq!(c.span_limits.attributes, 5);
    assert_eq!(c.log_filter, "warn");
    // In one layer, the more specific setting wins, and an empty name is none.
    let (c, _) = config(&[
        ("OTEL_SERVICE_NAME", "own"),
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=general"),
    ]);
    assert_eq!(c.service_name, "own");
    let (c, _) = config(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=")]);
    assert!(
        c.service_name.starts_with("unknown_service:"),
        "{}",
        c.service_name
    );
}

/// The traces-only variable replaces the general one whole in one layer; from a
/// lower layer than the general one's (the file's, under a variable), it is the
/// one replaced. One that cannot be read leaves the general one in use, and says so.
/// A headers value that gives nothing but framing pairs sends nothing of itself, as a
/// value that cannot be read: the general one is read in its place. A name given
/// twice is named once.
#[test]
fn a_headers_value_of_framing_pairs_alone_is_refused_whole() {
    let (c, errors) = config(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "content-length=5,Content-Length=6",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=a"),
    ]);
    assert_eq!(c.otlp_headers, [("x-tenant".to_owned(), "a".to_owned())]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(!errors[0].adjusted(), "{errors:?}");
    let said = errors[0].to_string();
    assert!(
        said.ends_with(
            "(it names `content-length`); no headers from it are sent; OTEL_EXPORTER_OTLP_HEADERS is read instead"
        ),
        "{said}"
    );
}

#[test]
fn the_traces_headers_replace_the_general_ones() {
    let (c, errors) = with_file(
        "[otel]\nexporter_otlp_headers = \"authorization=Bearer%20abc,x-tenant=7\"\nexporter_otlp_traces_headers = \"x-tenant=8\"\n",
        &[],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.otlp_headers, [("x-tenant".to_owned(), "8".to_owned())]);
    let (c, errors) = with_file(
        "[otel]\nexporter_otlp_traces_headers = \"x-tenant=8\"\n",
        &[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20abc,x-tenant=7",
        )],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        c.otlp_headers,
        [
            ("authorization".to_owned(), "Bearer abc".to_owned()),
            ("x-tenant".to_owned(), "7".to_owned())
        ]
    );
    let (c, errors) = config(&[
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=8,broken"),
    ]);
    assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    assert!(
        errors[0]
            .to_string()
            .ends_with("OTEL_EXPORTER_OTLP_HEADERS is read instead"),
        "{}",
        errors[0]
    );
    assert_eq!(
        c.otlp_headers,
        [("authorization".to_owned(), "Bearer abc".to_owned())]
    );
}

#[test]
fn a_service_named_by_nothing_is_an_unknown_service_and_pushes_as_its_program() {
    let program = executable_name().unwrap();
    let push = ("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091");
    let (c, errors) = config(&[push]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.service_name, format!("unknown_service:{program}"));
    assert_eq!(c.push.unwrap().job, program);
    let (c, _) = config(&[push, ("OTEL_RESOURCE_ATTRIBUTES", "service.name=orders")]);
    assert_eq!(c.push.unwrap().job, "orders");
}

#[test]
fn resource_attributes_name_the_service_after_the_variable() {
    let attrs = (
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=orders,deployment.environment=eu%2Cwest",
    );
    let (c, errors) = config(&[attrs]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.service_name, "orders");
    assert_eq!(c.resource_attributes[1].1, "eu,west");
    let (c, _) = config(&[attrs, ("OTEL_SERVICE_NAME", "checkout")]);
    assert_eq!(c.service_name, "checkout");
    let (c, errors) = config(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue,a=%zz")]);
    assert_eq!(errors[0].key, "OTEL_RESOURCE_ATTRIBUTES");
    assert!(
        c.resource_attributes.is_empty(),
        "a bad value is discarded whole"
    );
}

#[test]
fn log_settings() {
    let (c, errors) = config(&[("RUST_LOG", "warn,http_server=debug")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.log_filter, "warn,http_server=debug");
    // As the subscriber reads them: a trailing comma (which it read as `error`),
    // spaces (which made a target no target), a bare target, a numeric level.
    for (given, kept) in [
        ("info,", "info"),
        ("info, my_app = debug", "info,my_app=debug"),
        ("my_app", "my_app"),
        ("warn,my_app=4", "warn,my_app=4"),
    ] {
        let (c, errors) = config(&[("RUST_LOG", given)]);
        assert!(errors.is_empty(), "{given}: {errors:?}");
        assert_eq!(c.log_filter, kept);
    }
    for bad in [
        ",",
        "my_app=loud",
        "a=b=c",
        "my_app[{x}]=info",
        "my app=info",
    ] {
        let (c, errors) = config(&[("RUST_LOG", bad)]);
        assert_eq!(errors.len(), 1, "{bad}");
        assert_eq!(c.log_filter, "info", "{bad}");
    }
    let (c, errors) = config(&[
        ("RUST_LOG", "debug"),
        ("COLDSTART_LOG_FILTER", "my_crate=loud"),
    ]);
    assert_eq!(errors[0].key, "COLDSTART_LOG_FILTER");
    assert_eq!(c.log_filter, "debug", "the next source is used");
    // And said to be: the line said the default was, while `RUST_LOG` was.
    assert!(
        errors[0].to_string().contains("RUST_LOG is used instead"),
        "{}",
        errors[0]
    );
    let (c, errors) = config(&[("COLDSTART_LOG_FORMAT", "json")]);
    if cfg!(feature = "logs") {
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.log_format, LogFormat::Json);
    } else {
        assert!(errors[0].accepts.contains("`logs` feature"), "{errors:?}");
    }
}

#[test]
fn a_query_on_the_general_endpoint_stays_after_the_signal_path() {
    let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/base/?x=1")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        c.otlp_endpoint.as_deref(),
        Some("http://c:4318/base/v1/traces?x=1")
    );
}

#[test]
fn a_bad_signal_setting_names_the_general_one_used_instead() {
    let (c, errors) = config(&[
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
    ]);
    assert_eq!(c.otlp_timeout, Duration::from_secs(2));
    assert_eq!(c.otlp_endpoint.as_deref(), Some("http://c:4318/v1/traces"));
    let said: Vec<_> = errors.iter().map(|e| (e.key, e.instead)).collect();
    assert_eq!(
        said,
        [
            (
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT is used instead"
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_ENDPOINT is used instead"
            ),
        ]
    );
    // Without a usable general setting, the default is what is used.
    let (_, errors) = config(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd")]);
    assert_eq!(errors[0].instead, USING_THE_DEFAULT);
    let (_, errors) = config(&[
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
    ]);
    assert_eq!(errors[0].instead, USING_THE_DEFAULT);
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn a_timeout_of_zero_is_refused_since_every_export_would_fail() {
    let (c, errors) = config(&[
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "0"),
    ]);
    assert_eq!(c.otlp_timeout, Duration::from_secs(10));
    assert_eq!(c.queue.export_timeout, Queue::default().export_timeout);
    let keys: Vec<_> = errors.iter().map(|e| (e.key, e.accepts)).collect();
    assert_eq!(
        keys,
        [
            ("OTEL_BSP_EXPORT_TIMEOUT", TIMEOUT),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", TIMEOUT)
        ]
    );
}

#[test]
fn a_batch_larger_than_the_queue_is_said_and_the_queue_size_used() {
    let (c, errors) = config(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096")]);
    assert_eq!(c.queue.batch, c.queue.max_spans);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
    assert_eq!(errors[0].value, "4096");
    let (c, errors) = config(&[
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "8192"),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.queue.batch, 4096);
}

#[test]
fn a_percent_escape_is_two_hex_digits_and_nothing_else() {
    assert_eq!(percent_decode("a%41b").as_deref(), Some("aAb"));
    assert_eq!(percent_decode("%+41"), None);
    assert_eq!(percent_decode("%4"), None);
}

#[test]
fn names_of_values_are_read_in_any_case() {
    let (c, errors) = config(&[
        ("OTEL_TRACES_SAMPLER", "ALWAYS_OFF"),
        ("OTEL_PROPAGATORS", "TraceContext"),
        ("OTEL_TRACES_EXPORTER", "None"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/Protobuf"),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(c.sampler, Sampler::AlwaysOff);
    assert!(c.trace_context && !c.baggage);
    assert!(!c.export_traces);
    assert_eq!(c.protocol, Protocol::HttpProtobuf);
}

/// Settings given in code as zero, which no variable can give (a batch of no span
/// exported nothing, a timeout of zero failed every export), take their defaults,
/// and a batch larger than the queue is cut to it, each said; the defaults are left
/// as they are.
#[test]
fn zeroes_given_in_code_take_the_defaults_and_are_said() {
    let (mut c, _) = config(&[]);
    assert!(c.mend_code_values().is_empty());
    let default = Queue::default();
    c.queue.batch = 0;
    c.queue.max_spans = 0;
    c.queue.export_timeout = Duration::ZERO;
    c.otlp_timeout = Duration::ZERO;
    let said = c.mend_code_values();
    assert_eq!(said.len(), 4, "{said:?}");
    assert_eq!(
        said[1],
        "queue.batch of 0 given in code: 512 is used (from 1 up is taken)"
    );
    assert_eq!(
        (c.queue.batch, c.queue.max_spans),
        (default.batch, default.max_spans)
    );
    assert_eq!(c.queue.export_timeout, default.export_timeout);
    assert_eq!(c.otlp_timeout, Duration::from_secs(10));
    c.queue.max_spans = 100;
    let said = c.mend_code_values();
    assert_eq!(
        said,
        ["queue.batch of 512 given in code is larger than queue.max_spans: 100 is used"]
    );
    assert_eq!(c.queue.batch, 100);
}

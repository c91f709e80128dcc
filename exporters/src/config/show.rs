//! Each setting's effective value as text, for `cargo coldstart doctor`. Secrets
//! (header values) are never shown.

use super::{Config, LogFormat, Sampler};

impl Config {
    /// The effective value behind each variable the exporters read, as text, in the
    /// order of [`coldstart_bootstrap::config::VARIABLES`]. Header values are
    /// replaced by `<hidden>`.
    ///
    /// ```
    /// use coldstart_bootstrap::Env;
    /// use coldstart_exporters::config::Config;
    /// let (config, _) = Config::from(&Env::fixed([("OTEL_EXPORTER_OTLP_HEADERS", "authorization=secret")]));
    /// let shown = config.effective();
    /// let value = |k| shown.iter().find(|(v, _)| *v == k).map(|(_, s)| s.as_str());
    /// assert_eq!(value("COLDSTART_METRICS_ADDR"), Some("127.0.0.1:9464"));
    /// assert!(!format!("{shown:?}").contains("secret"));
    /// ```
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let or = |v: Option<String>, none: &str| v.unwrap_or_else(|| none.to_owned());
        let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let sampler_arg = match self.sampler {
            Sampler::TraceIdRatio(p)
            | Sampler::ParentBasedTraceIdRatio(p)
            | Sampler::Dynamic(p)
            | Sampler::ParentBasedDynamic(p) => p.to_string(),
            _ => "(not used by this sampler)".to_owned(),
        };
        let propagators = match (self.trace_context, self.baggage) {
            (true, true) => "tracecontext,baggage",
            (true, false) => "tracecontext",
            (false, true) => "baggage",
            (false, false) => "none",
        };
        // As messages show it: no user info, no query (a key may be there).
        let endpoint = coldstart_bootstrap::config::shown(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            self.otlp_endpoint_or_default(),
        );
        let headers = if self.otlp_headers.is_empty() {
            "(none)".to_owned()
        } else {
            self.otlp_headers
                .iter()
                .map(|(k, _)| format!("{k}=<hidden>"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let tls = self.metrics_tls.as_ref();
        let push = self.push.as_ref();
        let ms = |d: std::time::Duration| format!("{}", d.as_millis());
        let log_format = match self.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
            LogFormat::Off => "off",
        };
        let mut rows = vec![
            ("COLDSTART_LOG_FORMAT", log_format.to_owned()),
            ("COLDSTART_LOG_FILTER", self.log_filter.clone()),
            (
                "COLDSTART_METRICS_ADDR",
                or(self.metrics_addr.map(|a| a.to_string()), "off"),
            ),
            (
                "COLDSTART_METRICS_TLS_CERT",
                or(
                    tls.map(|t| t.certificate.display().to_string()),
                    "(plain HTTP)",
                ),
            ),
            (
                "COLDSTART_METRICS_TLS_KEY",
                or(tls.map(|t| t.key.display().to_string()), "(plain HTTP)"),
            ),
            (
                "COLDSTART_METRICS_TLS_CLIENT_CA",
                or(
                    tls.and_then(|t| path(&t.client_ca)),
                    "(no client certificates)",
                ),
            ),
            (
                "COLDSTART_METRICS_PUSH_URL",
                or(push.map(super::Push::shown_url), "off"),
            ),
            (
                "COLDSTART_METRICS_PUSH_JOB",
                or(push.map(|p| p.job.clone()), "-"),
            ),
            (
                "COLDSTART_METRICS_PUSH_INTERVAL",
                or(push.map(|p| format!("{}ms", p.interval.as_millis())), "-"),
            ),
            (
                "COLDSTART_METRICS_PUSH_GROUPING",
                match push.map(|p| p.grouping.as_slice()) {
                    None => "-".to_owned(),
                    Some([]) => "(job only)".to_owned(),
                    Some(pairs) => pairs
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                },
            ),
            (
                "COLDSTART_LAMBDA_FLUSH_TIMEOUT",
                format!("{}ms", self.lambda.flush_timeout.as_millis()),
            ),
            (
                "COLDSTART_LAMBDA_EXTENSION",
                self.lambda.extension.name().to_owned(),
            ),
            (
                "COLDSTART_EMF_NAMESPACE",
                or(self.lambda.emf_namespace.clone(), "off"),
            ),
            ("COLDSTART_SAMPLER_K1", self.dynamic.k1.to_string()),
            ("COLDSTART_SAMPLER_K2", self.dynamic.k2.to_string()),
            ("COLDSTART_SAMPLER_FLOOR", self.dynamic.floor.to_string()),
            (
                "COLDSTART_SAMPLER_WINDOW",
                format!("{}s", self.dynamic.window.as_secs()),
            ),
            ("OTEL_SDK_DISABLED", (!self.traces).to_string()),
            ("OTEL_SERVICE_NAME", self.service_name.clone()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                match self.resource_attributes.as_slice() {
                    [] => "(none)".to_owned(),
                    attributes => attributes
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                },
            ),
            (
                "OTEL_TRACES_EXPORTER",
                match (self.traces, self.export_traces) {
                    (false, _) => "(tracing is off: OTEL_SDK_DISABLED)",
                    (true, true) => "otlp",
                    (true, false) => "none",
                }
                .to_owned(),
            ),
            ("OTEL_TRACES_SAMPLER", self.sampler.name().to_owned()),
            ("OTEL_TRACES_SAMPLER_ARG", sampler_arg),
            ("OTEL_PROPAGATORS", propagators.to_owned()),
            (
                "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
                or(
                    self.http_known_methods.as_ref().map(|m| m.join(",")),
                    "(the standard nine: GET,HEAD,POST,PUT,DELETE,CONNECT,OPTIONS,TRACE,PATCH)",
                ),
            ),
            ("OTEL_BSP_MAX_QUEUE_SIZE", self.queue.max_spans.to_string()),
            (
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                self.queue.batch.to_string(),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", ms(self.queue.delay)),
            ("OTEL_BSP_EXPORT_TIMEOUT", ms(self.queue.export_timeout)),
        ];
        rows.extend(
            self.span_limits
                .by_variable()
                .map(|(key, n)| (key, n.to_string())),
        );
        rows.extend(self.span_limits.value_lengths().map(|(key, n)| {
            (
                key,
                n.map_or_else(|| "(no limit)".to_owned(), |n| n.to_string()),
            )
        }));
        // Each OTLP setting has a generic and a traces-only variable; both show the
        // value in use.
        let otlp = [
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                endpoint,
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                headers,
            ),
            (
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                ms(self.otlp_timeout),
            ),
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                self.protocol.name().to_owned(),
            ),
            (
                "OTEL_EXPORTER_OTLP_COMPRESSION",
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                self.compression.name().to_owned(),
            ),
            (
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                or(path(&self.otlp_tls.ca), "(system roots)"),
            ),
            (
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                or(path(&self.otlp_tls.certificate), "(none)"),
            ),
            (
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                or(path(&self.otlp_tls.key), "(none)"),
            ),
        ];
        for (any, traces, value) in otlp {
            rows.push((any, value.clone()));
            rows.push((traces, value));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use coldstart_bootstrap::Env;
    use coldstart_bootstrap::config::VARIABLES;

    use super::*;

    #[test]
    fn every_exporter_variable_is_shown_once_and_known() {
        let (config, _) = Config::from(&Env::fixed::<&str, &str>([]));
        let shown = config.effective();
        let mut seen = std::collections::HashSet::new();
        for (variable, _) in &shown {
            assert!(
                VARIABLES.contains(variable),
                "{variable} is not in VARIABLES"
            );
            assert!(seen.insert(*variable), "{variable} twice");
        }
        let plan_variables = VARIABLES
            .iter()
            .filter(|v| !shown.iter().any(|(s, _)| s == *v))
            .copied()
            .collect::<Vec<_>>();
        use coldstart_bootstrap::plan::settings::{
            DRAIN_TIMEOUT, FIRST_RESPONSE_FALLBACK, KEYS, LOG,
        };
        let plan_keys = KEYS
            .iter()
            .chain([&FIRST_RESPONSE_FALLBACK, &DRAIN_TIMEOUT, &LOG])
            .map(|k| k.variable)
            .collect::<Vec<_>>();
        assert_eq!(
            plan_variables, plan_keys,
            "the rest are the plan's, which doctor shows from the plan, and \
             COLDSTART_LOG, which it checks as the service does"
        );
    }
}

/*!
Entry points for the fuzz targets in `fuzz/`: the `/proc` parsers behind the process
metrics, the reading of a collector's OTLP/HTTP answer, and the installation of
coldstart's own propagators, which are not public API. Compiled only under
`cfg(fuzzing)`, which `cargo fuzz` sets.
*/

/// Installs the propagators the exporters install by default (`tracecontext,baggage`:
/// coldstart's W3C trace context and baggage, not the SDK's), as the global one.
pub fn install_propagators() {
    crate::trace::install_propagators(true, true);
}

/// `/proc/self/stat` and `/proc/stat`.
pub fn process_files(text: &str) {
    if crate::metrics::process::parse_stat(text, 100.0, 4096.0).is_some() {
        // Fields are read after the last `)`, so a command name cannot shift them.
        assert!(text.contains(')'));
    }
    let _ = crate::metrics::process::parse_boot_time(text);
}

/// A collector's answer to an OTLP/HTTP export and its `Retry-After` header.
pub fn otlp_answer(body: &[u8], retry_after: &[u8]) {
    let _ = crate::trace::encode::partial_success(body);
    if let Ok(value) = http::HeaderValue::from_bytes(retry_after) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, value);
        if let Some(delay) = crate::trace::otlp_retry_after(&headers) {
            assert!(delay <= std::time::Duration::from_secs(30), "{delay:?}");
        }
    }
}

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

/// `/proc/self/stat` and `/proc/stat`, on any text; and the text as a command name
/// (field 2, which may hold spaces and parentheses) in a stat line of known fields,
/// which must be read as they are: fields are counted from the last `)`.
pub fn process_files(text: &str) {
    let _ = crate::metrics::process::parse_stat(text, 100.0, 4096.0);
    let _ = crate::metrics::process::parse_boot_time(text);
    // Fields 3 to 52, field n holding n (field 3, the state, is not read).
    let fields: Vec<String> = (3..=52).map(|n: u32| n.to_string()).collect();
    let line = format!("4242 ({text}) {}\n", fields.join(" "));
    let stat = crate::metrics::process::parse_stat(&line, 100.0, 4096.0)
        .unwrap_or_else(|| panic!("a stat line with the command {text:?} was not read"));
    assert_eq!(stat.cpu_seconds, (14.0 + 15.0) / 100.0, "{text:?}");
    assert_eq!(stat.threads, 20.0, "{text:?}");
    assert_eq!(stat.start_after_boot, 22.0 / 100.0, "{text:?}");
    assert_eq!(stat.virtual_bytes, 23.0, "{text:?}");
    assert_eq!(stat.resident_bytes, 24.0 * 4096.0, "{text:?}");
}

/// A collector's answer to an OTLP/gRPC export as coldstart reads it before tonic, on
/// any bytes: its first message's data in any frames goes on as sent and what follows
/// it is dropped, or, longer than tonic reads (4 MiB) or compressed and longer than
/// can inflate within that, an empty message; the trailers' `grpc-status-details-bin` leaves
/// tonic a status it reads without a panic, whose `RetryInfo` asks for at most 30 s.
#[cfg(feature = "grpc")]
pub fn grpc_answer(frames: &[&[u8]], details: &[u8]) {
    crate::trace::grpc_answer(frames, details);
}

/// A collector's answer to an OTLP/HTTP export and its `Retry-After` header, on any
/// bytes; and a partial success written here as the protobuf definitions say
/// (`ExportTraceServiceResponse.partial_success` = 1, in it `rejected_spans` = 1 and
/// `error_message` = 2), which must be read back as written. A `Retry-After` of
/// seconds asks for that long, at most 30 s.
pub fn otlp_answer(body: &[u8], retry_after: &[u8]) {
    let _ = crate::trace::encode::partial_success(body);
    if let Ok(value) = http::HeaderValue::from_bytes(retry_after) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, value);
        let delay = crate::trace::otlp_retry_after(&headers);
        if let Some(delay) = delay {
            assert!(delay <= std::time::Duration::from_secs(30), "{delay:?}");
        }
        let seconds = std::str::from_utf8(retry_after)
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(seconds) = seconds {
            let asked = std::time::Duration::from_secs(seconds.min(30));
            assert_eq!(delay, Some(asked), "{seconds} s");
        }
    }
    if let Ok(message) = std::str::from_utf8(body) {
        // A count from the header's bytes, negative ones too.
        let rejected = retry_after
            .iter()
            .fold(0i64, |n, b| n.wrapping_mul(251).wrapping_add(i64::from(*b)));
        let answer = written_partial_success(rejected, message);
        assert_eq!(
            crate::trace::encode::partial_success(&answer),
            Some((rejected, message.to_owned()))
        );
    }
}

/// An `ExportTraceServiceResponse` with a partial success, written by hand: no code
/// shared with the reader under test.
fn written_partial_success(rejected: i64, message: &str) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    let mut inner = vec![0x08]; // field 1, varint
    varint(&mut inner, rejected as u64); // int64: two's complement
    inner.push(0x12); // field 2, length-delimited
    varint(&mut inner, message.len() as u64);
    inner.extend_from_slice(message.as_bytes());
    let mut out = vec![0x0a]; // field 1, length-delimited
    varint(&mut out, inner.len() as u64);
    out.extend_from_slice(&inner);
    out
}

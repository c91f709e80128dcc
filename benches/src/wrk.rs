//! `wrk --latency` started, and what it prints read: the throughput and load harnesses
//! share it.

use std::process::{Command, Stdio};

use anyhow::Context;
use cargo_coldstart::interrupt::Helper;

/// Starts `wrk` with `threads` threads and `connections` connections for `seconds`
/// against `http://addr/`, its output piped; recorded for the harness's clean-up, so
/// that a signal to the harness alone stops it too, and killed if dropped before it
/// ends.
///
/// # Errors
///
/// When `wrk` cannot be started (saying how to install it).
pub fn start(
    threads: u32,
    connections: u32,
    seconds: u32,
    addr: std::net::SocketAddr,
) -> anyhow::Result<Helper> {
    Helper::spawn(
        Command::new("wrk")
            .args([
                format!("-t{threads}"),
                format!("-c{connections}"),
                format!("-d{seconds}s"),
                "--latency".into(),
                format!("http://{addr}/"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .context("cannot run wrk (Debian: apt-get install wrk)")
}

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Requests per second.
    pub requests_per_second: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Non-2xx/3xx responses and socket errors.
    pub errors: u64,
}

/// A `wrk --latency` figure such as `1.23ms`, `850.00us` or `1.02s`, in milliseconds.
pub fn millis(s: &str) -> Option<f64> {
    // Units per millisecond.
    let (number, per_ms) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1.0 / 60e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e-3)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n / per_ms)
}

/// Reads what `wrk --latency` printed.
///
/// # Errors
///
/// Output without a `Requests/sec:` line (wrk failed).
pub fn parse(out: &str) -> anyhow::Result<Run> {
    let field = |prefix: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
    };
    let requests_per_second = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("wrk printed no Requests/sec:\n{out}"))?;
    let p50_ms = field("50%").and_then(millis).unwrap_or(f64::NAN);
    let p99_ms = field("99%").and_then(millis).unwrap_or(f64::NAN);
    let mut errors = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Some(socket) = field("Socket errors:") {
        // "connect 0, read 0, write 0, timeout 0"
        errors += socket
            .split(',')
            .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(Run {
        requests_per_second,
        p50_ms,
        p99_ms,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_wrk_prints() {
        let out = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 16 connections\n  Latency Distribution\n     50%  412.00us\n     75%  1.20ms\n     90%    1.50ms\n     99%    2.01s\n  1000 requests in 1.00s, 100.00KB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\nRequests/sec:  25034.12\nTransfer/sec:      2.00MB\n";
        let run = parse(out).ok();
        let run = run.as_ref();
        assert_eq!(run.map(|r| r.requests_per_second), Some(25034.12));
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert!(close(run.map(|r| r.p50_ms), 0.412));
        assert!(close(run.map(|r| r.p99_ms), 2010.0));
        assert_eq!(millis("1.5m"), Some(90_000.0));
        assert_eq!(run.map(|r| r.errors), Some(3));
        assert!(parse("wrk: connection refused").is_err());
    }
}

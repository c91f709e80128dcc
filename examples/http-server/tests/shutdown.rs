//! SIGTERM during load, end to end: the example drains (`coldstart::draining()`), answers
//! every request it had read, and its final flush delivers every queued span to a real
//! OTLP receiver before it exits. Each request carries its own trace id, so requests answered and spans
//! received are matched one by one, not only counted.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use coldstart_test_support::{Collector, poll, start_server};

const SERVER: &str = env!("CARGO_BIN_EXE_http-server");

/// Connections kept busy by the load.
const CLIENTS: u32 = 8;

/// The signal is sent once this many requests have been answered.
const BEFORE_SIGNAL: usize = 1500;

/// How one request ended, seen from the client.
enum Ending {
    /// A whole `200` response.
    Answered,
    /// The connection closed (or was reset) before any byte of a response: the server
    /// never read the request.
    Closed,
    /// Part of a response, or a response that is not `200 hello`: a request lost.
    Broken(String),
}

/// Sends `GET /` with a `traceparent` of trace `trace`, keep-alive; reads the answer.
fn request(stream: &mut BufReader<TcpStream>, trace: &str) -> Ending {
    let head =
        format!("GET / HTTP/1.1\r\nHost: x\r\ntraceparent: 00-{trace}-00f067aa0ba902b7-01\r\n\r\n");
    if stream.get_mut().write_all(head.as_bytes()).is_err() {
        return Ending::Closed;
    }
    read_response(stream)
}

/// Reads one response with a `content-length` body.
fn read_response(stream: &mut BufReader<TcpStream>) -> Ending {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match stream.read_line(&mut line) {
            Ok(0) | Err(_) if head.is_empty() => return Ending::Closed,
            Ok(0) | Err(_) => return Ending::Broken(format!("cut off in the head: {head}")),
            Ok(_) => {}
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    if stream.read_exact(&mut body).is_err() {
        return Ending::Broken(format!("cut off in the body: {head}"));
    }
    if head.starts_with("HTTP/1.1 200") && body == b"hello\n" {
        Ending::Answered
    } else {
        Ending::Broken(format!("{head}{}", String::from_utf8_lossy(&body)))
    }
}

/// What one client saw: trace ids answered, not answered, and any broken answer.
#[derive(Default)]
struct Seen {
    answered: Vec<String>,
    unanswered: Vec<String>,
    broken: Vec<String>,
    /// Answers read after the signal was sent: the requests in flight then. Reported,
    /// not asserted: how many there are depends on timing.
    answered_after_signal: usize,
}

/// `stream`, read with a 30 s limit on each read: an answer that never comes is a
/// broken one, and the test fails instead of hanging.
fn answered_within(stream: TcpStream) -> BufReader<TcpStream> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    BufReader::new(stream)
}

/// A client: requests one after the other on a keep-alive connection, reconnecting
/// when the server closes it, until the signal is sent (as a load balancer stops
/// sending to a terminating instance): the request in flight then is finished.
fn client(port: u16, n: u32, total: Arc<AtomicUsize>, signalled: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut i = 0u64;
    'connections: while let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
        let mut stream = answered_within(stream);
        loop {
            if signalled.load(Ordering::Acquire) {
                break 'connections;
            }
            i += 1;
            let trace = format!("{n:08x}{i:024x}");
            match request(&mut stream, &trace) {
                Ending::Answered => {
                    seen.answered.push(trace);
                    total.fetch_add(1, Ordering::AcqRel);
                    if signalled.load(Ordering::Acquire) {
                        seen.answered_after_signal += 1;
                    }
                }
                Ending::Closed => {
                    seen.unanswered.push(trace);
                    continue 'connections;
                }
                Ending::Broken(what) => {
                    seen.broken.push(format!("{trace}: {what}"));
                    continue 'connections;
                }
            }
        }
    }
    seen
}

#[test]
fn sigterm_during_load_answers_every_request_read_and_flushes_every_span() {
    let test = "sigterm_during_load_answers_every_request_read_and_flushes_every_span";
    let Some(collector) = Collector::start(test, "ok") else {
        return;
    };
    let (port, mut server, mut lines) = start_server(
        SERVER,
        std::path::Path::new("."),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
            ("OTEL_TRACES_SAMPLER", "parentbased_always_on".into()),
            // Room for every span of the run: a drop would be counted, but this test
            // is about losing none.
            ("OTEL_BSP_MAX_QUEUE_SIZE", "1048576".into()),
            // Batches go out when full; the rest waits for the final flush at shutdown.
            ("OTEL_BSP_SCHEDULE_DELAY", "3600000".into()),
            ("COLDSTART_METRICS_ADDR", "off".into()),
        ],
    );

    // A request whose head is half sent when the signal comes, on a connection the
    // server has accepted: it is in flight and must be answered.
    let mut half = answered_within(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let half_trace = format!("{:032x}", u128::from(u32::MAX));
    write!(
        half.get_mut(),
        "GET / HTTP/1.1\r\nHost: x\r\ntraceparent: 00-{half_trace}-00f067aa0ba902b7-01\r\n"
    )
    .unwrap();

    // A keep-alive connection idle at the signal: the drain closes it.
    let mut idle = answered_within(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let idle_trace = format!("{:032x}", u128::from(u32::MAX) - 1);
    assert!(matches!(request(&mut idle, &idle_trace), Ending::Answered));

    let total = Arc::new(AtomicUsize::new(0));
    let signalled = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (1..=CLIENTS)
        .map(|n| {
            let (total, signalled) = (total.clone(), signalled.clone());
            std::thread::spawn(move || client(port, n, total, signalled))
        })
        .collect();
    assert!(
        poll(Duration::from_secs(30), || {
            (total.load(Ordering::Acquire) >= BEFORE_SIGNAL).then_some(())
        })
        .is_some(),
        "the load never reached {BEFORE_SIGNAL} answers: {}",
        total.load(Ordering::Acquire)
    );

    signalled.store(true, Ordering::Release);
    let signal_sent = Instant::now();
    // SAFETY: signalling our own child.
    assert_eq!(
        unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) },
        0
    );
    // The idle connection is closed by the drain while the process lives on, waiting
    // for the half-sent request (a process that just exited would close it too, but
    // could not answer that request below).
    idle.get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0; 1];
    assert!(
        matches!(idle.read(&mut byte), Ok(0)),
        "the idle keep-alive connection was not closed at the signal"
    );
    // The listener is gone by then: a new connection is refused.
    let late = TcpStream::connect(("127.0.0.1", port));
    assert!(
        late.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a connection after the signal was not refused: {late:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    half.get_mut().write_all(b"\r\n").unwrap();
    let half_answer = read_response(&mut half);

    let status = server.wait_within(Duration::from_secs(30));
    let exited_after = signal_sent.elapsed();
    let said = lines.drain(Duration::from_millis(100)).to_owned();
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(
        !said.contains("did not finish"),
        "the drain and the flush finish within their deadlines:\n{said}"
    );
    assert!(
        matches!(half_answer, Ending::Answered),
        "the half-sent request was in flight at the signal and must be answered"
    );

    let mut answered = BTreeSet::from([half_trace, idle_trace]);
    let mut unanswered = BTreeSet::new();
    let mut broken = Vec::new();
    let mut after_signal = 0;
    for seen in clients.into_iter().map(|c| c.join().unwrap()) {
        answered.extend(seen.answered);
        unanswered.extend(seen.unanswered);
        broken.extend(seen.broken);
        after_signal += seen.answered_after_signal;
    }
    assert!(broken.is_empty(), "responses cut off: {broken:?}");

    // Every answered request's span reached the receiver, and no request the client
    // saw unanswered has one: the server never read those.
    let spans = collector.at_least(answered.len());
    let traced: BTreeSet<String> = spans
        .iter()
        .map(|s| s["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(spans.len(), traced.len(), "one span per request");
    let missing: Vec<_> = answered.difference(&traced).collect();
    assert!(missing.is_empty(), "answered but no span: {missing:?}");
    let extra: Vec<_> = traced.difference(&answered).collect();
    assert!(
        extra.is_empty(),
        "a span for a request never answered: {extra:?}"
    );
    eprintln!(
        "{test}: {} requests answered ({after_signal} after the signal), {} closed unread, \
         {} spans received; exited {} ms after SIGTERM",
        answered.len(),
        unanswered.len(),
        spans.len(),
        exited_after.as_millis()
    );
}

//! The function end to end against the real Lambda Runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`, PyPI `cargo-lambda`), invoked with
//! `cargo lambda invoke`, exporting to the real OTLP receiver built on the official
//! protobuf definitions. Time is asserted on only as a bound on waiting the design
//! rules out (retry backoff before `/next`); the cost is measured in the benchmarks.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;

use cargo_coldstart::measure::{EmulatorProcess, start_emulator};
use coldstart_test_support::{Collector, Lines, Reaper, poll, tool};

const FUNCTION: &str = env!("CARGO_BIN_EXE_lambda-hello");

/// `cargo-lambda` (`COLDSTART_TEST_CARGO_LAMBDA`, which scripts/test sets to its
/// venv's, else the one on `PATH`); `None` after saying the test is skipped where it
/// is missing outside CI.
fn cargo_lambda(test: &str) -> Option<PathBuf> {
    let program =
        std::env::var("COLDSTART_TEST_CARGO_LAMBDA").unwrap_or_else(|_| "cargo-lambda".into());
    tool(test, &program, &["lambda", "--version"])
}

/// The emulator, listening on its own port; stopped when dropped.
struct Emulator {
    cargo_lambda: PathBuf,
    port: u16,
    _process: EmulatorProcess,
}

impl Emulator {
    fn start(cargo_lambda: PathBuf) -> Emulator {
        let (process, addr) =
            start_emulator(&cargo_lambda, env!("CARGO_MANIFEST_DIR").as_ref()).unwrap();
        Emulator {
            cargo_lambda,
            port: addr.port(),
            _process: process,
        }
    }

    /// The Runtime API as the emulator prints it: a URL with a path.
    fn runtime_api(&self) -> String {
        format!("http://127.0.0.1:{}/.rt", self.port)
    }

    /// `cargo lambda invoke` of the default function, bounded by `timeout` since it
    /// waits forever for an answer that never comes.
    fn invoke_command(&self, data: &str) -> Command {
        self.invoke_command_to(self.port, data)
    }

    /// [`Emulator::invoke_command`], sent to `port` (a proxy in front of it).
    fn invoke_command_to(&self, port: u16, data: &str) -> Command {
        let mut command = Command::new("timeout");
        command
            .arg("30")
            .arg(&self.cargo_lambda)
            .args(["lambda", "invoke", "-A", "127.0.0.1", "-P"])
            .arg(port.to_string())
            .args(["--data-ascii", data, "_"]);
        command
    }

    fn invoke(&self, data: &str) -> Output {
        self.invoke_command(data).output().unwrap()
    }

    /// `cargo lambda invoke` started, returned once its invocation has reached the
    /// emulator, which queues it: what a function started next takes first. (A sleep
    /// would bet on how soon `cargo lambda` sends it.) Its output is piped.
    fn queue(&self, data: &str) -> std::process::Child {
        let (port, arrived) = announcing(self.port);
        let caller = self
            .invoke_command_to(port, data)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        arrived
            .recv_timeout(Duration::from_secs(30))
            .expect("the invocation never reached the emulator");
        // Written to the emulator's socket; its reading and queueing it is not seen
        // from here. A function started next still has to start up before it asks.
        std::thread::sleep(Duration::from_millis(50));
        caller
    }
}

/// A port in front of the emulator for one caller: its requests are passed on as
/// they are, and `arrived` hears of each once it is written to the emulator, head
/// and body.
fn announcing(emulator: u16) -> (u16, Receiver<()>) {
    let (tx, arrived) = std::sync::mpsc::channel();
    let sent = move || {
        let _ = tx.send(());
    };
    (forwarder(emulator, Some, Some, sent), arrived)
}

/// Waits at most `within` for the function to exit. One that does not (a regression
/// that leaves it running) fails the test with what it said, where an unbounded wait
/// would hold the whole run until CI's own timeout.
fn exit_within(function: &mut Function, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = function.child.0.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let said = function.stderr.drain(Duration::from_millis(200)).to_owned();
            panic!("the function did not exit within {within:?}; it said:\n{said}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The function started against `emulator`: its stdout lines (EMF records) as they
/// come, its stderr.
struct Function {
    child: Reaper,
    stdout: Receiver<String>,
    stderr: Lines,
}

impl Function {
    /// Started with `vars` (values that may not be UTF-8) on top of the Lambda
    /// variables.
    fn start<V: AsRef<OsStr>>(runtime_api: &str, vars: &[(&str, V)]) -> Function {
        let mut child = Command::new(FUNCTION)
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "lambda-hello")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "7")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[7]0123abcd")
            .envs(vars.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Lines::of(&mut child);
        let out = child.stdout.take().unwrap();
        let (tx, stdout) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Function {
            child: Reaper(child),
            stdout,
            stderr,
        }
    }

    /// The EMF records written so far, waiting until there are `n` (at most 10 s).
    fn emf(&self, n: usize, seen: &mut Vec<Value>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v.get("_aws").is_some()
                    {
                        seen.push(v);
                    }
                }
                Err(_) => panic!("{} of {n} EMF records arrived: {seen:?}", seen.len()),
            }
        }
    }
}

/// A Runtime API at the root of `127.0.0.1:PORT` (as Lambda serves it) in front of
/// the emulator's `/.rt`: each request line's path gets the prefix, everything else
/// is copied as is. Returns its port.
fn at_root(emulator: u16) -> u16 {
    proxy(emulator, None)
}

/// The emulator's Runtime API behind a proxy: each request line's path gets the
/// emulator's `/.rt` prefix, and with `deadline` each invocation's
/// `Lambda-Runtime-Deadline-Ms` becomes that long after the proxy received it, in
/// milliseconds since the Unix epoch, as Lambda sends it. (The emulator sends its
/// timeout, 600000, there, and stops no invocation: the one piece of Lambda this
/// stands in for.) Everything else is copied as is. Returns its port.
fn proxy(emulator: u16, deadline: Option<Duration>) -> u16 {
    proxy_with(emulator, deadline, false, || {})
}

/// [`at_root`], but an invocation's answer (its response or its error) is never
/// taken: the proxy closes the connection it comes on instead of passing it on.
fn dropping_answers(emulator: u16) -> u16 {
    proxy_with(emulator, None, true, || {})
}

/// [`proxy`], dropping answers as [`dropping_answers`] where `drop_answers`, and
/// calling `at_next` as each request for the next invocation comes, before it goes on.
fn proxy_with(
    emulator: u16,
    deadline: Option<Duration>,
    drop_answers: bool,
    at_next: impl Fn() + Clone + Send + 'static,
) -> u16 {
    let up = move |head: String| {
        let path = head.split(' ').nth(1).unwrap_or_default();
        if head.starts_with("GET ") && path.ends_with("/runtime/invocation/next") {
            at_next();
        }
        let answer =
            head.starts_with("POST ") && (path.ends_with("/response") || path.ends_with("/error"));
        (!(drop_answers && answer)).then(|| head.replacen(" /", " /.rt/", 1))
    };
    let down = move |head: String| match deadline {
        Some(d) => Some(with_deadline(&head, d)),
        None => Some(head),
    };
    forwarder(emulator, up, down, || {})
}

/// A port in front of the emulator: each connection to it is one to the emulator,
/// with the requests' heads through `up` (and `sent` called after each request) and
/// the answers' through `down`, as [`forward`] copies them. Returns its port.
fn forwarder<Up, Down, Sent>(emulator: u16, up: Up, down: Down, sent: Sent) -> u16
where
    Up: Fn(String) -> Option<String> + Clone + Send + 'static,
    Down: Fn(String) -> Option<String> + Clone + Send + 'static,
    Sent: Fn() + Clone + Send + 'static,
{
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let upstream = TcpStream::connect(("127.0.0.1", emulator)).unwrap();
            // A head and its body go in two writes: without this the body waited for
            // the head's delayed acknowledgement (40 ms), and a deadline the proxy set
            // had passed when the function read it.
            let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
            let (from_up, to_client) = (upstream.try_clone().unwrap(), client.try_clone().unwrap());
            let down = down.clone();
            std::thread::spawn(move || forward(from_up, to_client, down, || {}));
            let (up, sent) = (up.clone(), sent.clone());
            std::thread::spawn(move || forward(client, upstream, up, sent));
        }
    });
    port
}

/// Copies HTTP/1.1 messages (heads and `Content-Length` bodies) from `from` to `to`,
/// each head through `edit` once its body has come, and head and body in one write,
/// calling `sent` after each message, until either side closes, or `edit` gives no
/// head: then it closes both.
fn forward(
    from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    edit: impl Fn(String) -> Option<String>,
    sent: impl Fn(),
) {
    use std::io::{Read, Write};
    let mut from = BufReader::new(from);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if from.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let end = line == "\r\n";
            head.push_str(&line);
            if end {
                break;
            }
        }
        let length: u64 = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // The body read first: closed with unread data, the socket would be reset,
        // and the client see that rather than a connection closed unanswered; and a
        // deadline `edit` sets is set when the whole message can go.
        let mut body = Vec::new();
        if (&mut from).take(length).read_to_end(&mut body).is_err() {
            return;
        }
        let Some(head) = edit(head) else {
            let _ = from.get_ref().shutdown(std::net::Shutdown::Both);
            let _ = to.shutdown(std::net::Shutdown::Both);
            return;
        };
        let mut message = head.into_bytes();
        message.extend_from_slice(&body);
        if to.write_all(&message).is_err() {
            return;
        }
        sent();
    }
}

/// `head` with its `Lambda-Runtime-Deadline-Ms` set to `after` from now.
fn with_deadline(head: &str, after: Duration) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let deadline = (now + after).as_millis();
    head.split_inclusive("\r\n")
        .map(|line| {
            if line
                .to_ascii_lowercase()
                .starts_with("lambda-runtime-deadline-ms:")
            {
                format!("lambda-runtime-deadline-ms: {deadline}\r\n")
            } else {
                line.to_owned()
            }
        })
        .collect()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The emulator, a collector that takes every span, and the function started against
/// both with `vars` too; `None` (after saying `test` is skipped) where a tool is
/// missing outside CI.
fn traced(test: &str, vars: &[(&str, &str)]) -> Option<(Collector, Emulator, Function)> {
    traced_via(test, vars, Emulator::runtime_api)
}

/// [`traced`], the function given the Runtime API address `api` makes of the
/// emulator (a proxy in front of it, say).
fn traced_via(
    test: &str,
    vars: &[(&str, &str)],
    api: impl FnOnce(&Emulator) -> String,
) -> Option<(Collector, Emulator, Function)> {
    let cargo_lambda = cargo_lambda(test)?;
    let collector = Collector::start(test, "ok")?;
    let emulator = Emulator::start(cargo_lambda);
    let endpoint = collector.endpoint();
    let mut all = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    all.extend_from_slice(vars);
    let function = Function::start(&api(&emulator), &all);
    Some((collector, emulator, function))
}

#[test]
fn n_invocations_give_n_answers_n_spans_and_n_emf_records_with_one_cold_start() {
    let test = "n_invocations_give_n_answers_n_spans_and_n_emf_records_with_one_cold_start";
    // The scheduled export waits a minute: each span can only arrive in time through
    // the flush that follows its invocation's response.
    let Some((collector, emulator, function)) =
        traced(test, &[("OTEL_BSP_SCHEDULE_DELAY", "60000")])
    else {
        return;
    };
    const N: usize = 5;
    for i in 0..N {
        let output = emulator.invoke(&format!(r#"{{"n":{i}}}"#));
        let answer: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("invocation {i}: {}", text(&output)));
        assert_eq!(
            answer,
            serde_json::json!({"greeting": "hello", "echo": {"n": i}})
        );
        assert_eq!(
            collector.at_least(i + 1).len(),
            i + 1,
            "invocation {i}'s span, flushed"
        );
    }

    let spans = collector.at_least(N);
    assert_eq!(spans.len(), N, "one span per invocation: {spans:?}");
    let cold: Vec<bool> = spans
        .iter()
        .map(|s| s["attributes"]["faas.coldstart"].as_bool().unwrap())
        .collect();
    assert_eq!(cold.iter().filter(|c| **c).count(), 1, "{cold:?}");
    assert!(cold[0], "the first invocation is the cold one: {cold:?}");
    let mut ids = std::collections::HashSet::new();
    for span in &spans {
        assert_eq!(span["name"], "lambda-hello");
        assert_eq!(span["kind"], 2, "SPAN_KIND_SERVER");
        assert_eq!(span["attributes"]["faas.trigger"], "other");
        assert!(
            ids.insert(
                span["attributes"]["faas.invocation_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            )
        );
        let resource = &span["resource"];
        assert_eq!(resource["service.name"], "lambda-hello");
        assert_eq!(resource["cloud.provider"], "aws");
        assert_eq!(resource["cloud.platform"], "aws_lambda");
        assert_eq!(resource["cloud.region"], "eu-west-1");
        assert_eq!(resource["faas.name"], "lambda-hello");
        assert_eq!(resource["faas.version"], "7");
        assert_eq!(resource["faas.instance"], "2026/11/24/[7]0123abcd");
        assert_eq!(resource["faas.max_memory"], 512 << 20);
        // The emulator sends an X-Ray header with every invocation; the span links it.
        let links = span["links"].as_array().unwrap();
        assert_eq!(links.len(), 1, "{span}");
        assert_eq!(links[0]["trace_id"].as_str().unwrap().len(), 32);
        assert_ne!(links[0]["span_id"], "0000000000000000");
        assert_eq!(span["status"]["code"], 0, "unset: {span}");
    }

    let mut records = Vec::new();
    function.emf(N, &mut records);
    let field = |r: &Value, k: &str| r[k].as_f64().unwrap_or(-1.0);
    assert_eq!(
        records.iter().map(|r| field(r, "ColdStart")).sum::<f64>(),
        1.0
    );
    assert_eq!(field(&records[0], "ColdStart"), 1.0);
    let init = field(&records[0], "InitDuration");
    assert!(
        init > 0.0 && init < 10_000.0,
        "measured init duration: {init} ms"
    );
    assert!(records[1..].iter().all(|r| r.get("InitDuration").is_none()));
    for r in &records {
        assert_eq!(r["function"], "lambda-hello");
        assert_eq!(field(r, "Errors"), 0.0);
        assert!(field(r, "Duration") > 0.0);
        assert!(ids.contains(r["faas.invocation_id"].as_str().unwrap()));
    }
}

/// Lambda freezes the environment once the function asks for its next event: what
/// has not left by then waits, frozen, maybe for good. Each invocation's span must be
/// at the collector before the function's next `/next`: a proxy in front of the
/// Runtime API reads how many spans the collector holds as each `/next` arrives
/// (the receiver writes a span down before it answers the export).
#[test]
fn each_invocations_span_reaches_the_collector_before_the_next_next() {
    let test = "each_invocations_span_reaches_the_collector_before_the_next_next";
    let Some(cargo_lambda) = cargo_lambda(test) else {
        return;
    };
    let Some(collector) = Collector::start(test, "ok") else {
        return;
    };
    let collector = std::sync::Arc::new(collector);
    let emulator = Emulator::start(cargo_lambda);
    let at_next = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = {
        // Weak: the proxy's thread outlives the test, and a strong reference there
        // kept the collector, and its receiver process, past the test's end.
        let (collector, at_next) = (std::sync::Arc::downgrade(&collector), at_next.clone());
        move || {
            if let Some(collector) = collector.upgrade() {
                at_next.lock().unwrap().push(collector.spans().len());
            }
        }
    };
    let api = proxy_with(emulator.port, None, false, seen);
    let endpoint = collector.endpoint();
    // The scheduled export waits a minute: only the flush after each answer sends.
    let mut function = Function::start(
        &format!("127.0.0.1:{api}"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
    );
    const N: usize = 3;
    for i in 0..N {
        let output = emulator.invoke(&format!(r#"{{"n":{i}}}"#));
        assert!(output.status.success(), "{}", text(&output));
    }
    // The function's `/next` after the last answer is the N+1st.
    let seen = poll(Duration::from_secs(10), || {
        let seen = at_next.lock().unwrap().clone();
        (seen.len() > N).then_some(seen)
    })
    .unwrap_or_else(|| {
        let said = function.stderr.drain(Duration::from_millis(200));
        panic!(
            "spans at each /next: {:?}; the function said: {said}",
            at_next.lock().unwrap()
        )
    });
    assert_eq!(
        seen,
        (0..=N).collect::<Vec<_>>(),
        "spans at the collector as each /next arrived"
    );
}

/// Provisioned concurrency readies the environment before any request: its first
/// invocation waited for no start, so neither its span nor its EMF record says cold
/// start, and the record has no `InitDuration`.
#[test]
fn with_provisioned_concurrency_no_invocation_is_a_cold_start() {
    let test = "with_provisioned_concurrency_no_invocation_is_a_cold_start";
    let Some((collector, emulator, function)) = traced(
        test,
        &[("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")],
    ) else {
        return;
    };
    for i in 0..2 {
        let output = emulator.invoke(&format!(r#"{{"n":{i}}}"#));
        assert!(output.status.success(), "{}", text(&output));
    }
    let spans = collector.at_least(2);
    assert!(
        spans
            .iter()
            .all(|s| s["attributes"]["faas.coldstart"] == false),
        "{spans:?}"
    );
    let mut records = Vec::new();
    function.emf(2, &mut records);
    for r in &records {
        assert_eq!(r["ColdStart"], 0, "{r}");
        assert!(r.get("InitDuration").is_none(), "{r}");
    }
}

/// Lambda may start an on-demand environment before any request (proactive
/// initialisation), and says so nowhere: `AWS_LAMBDA_INITIALIZATION_TYPE` stays
/// `on-demand`. A first invocation that comes more than 10 s after the end of init
/// waited for no start, and is no cold start.
#[test]
fn a_first_invocation_long_after_init_is_no_cold_start() {
    let test = "a_first_invocation_long_after_init_is_no_cold_start";
    let Some((collector, emulator, function)) =
        traced(test, &[("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")])
    else {
        return;
    };
    // Init takes milliseconds; the function then waits on `/next`.
    std::thread::sleep(Duration::from_secs(12));
    let output = emulator.invoke(r#"{"n":1}"#);
    assert!(output.status.success(), "{}", text(&output));
    let spans = collector.at_least(1);
    assert_eq!(
        spans[0]["attributes"]["faas.coldstart"], false,
        "{}",
        spans[0]
    );
    let mut records = Vec::new();
    function.emf(1, &mut records);
    assert_eq!(records[0]["ColdStart"], 0, "{}", records[0]);
    assert!(records[0].get("InitDuration").is_none(), "{}", records[0]);
}

/// The `error.type` of the handler's errors: the type the Runtime API is told.
const BOXED_ERROR: &str =
    "alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>";

#[test]
fn handler_errors_and_panics_are_reported_counted_and_traced_and_the_next_invocation_succeeds() {
    let test = "handler_errors_and_panics_are_reported_counted_and_traced_and_the_next_invocation_succeeds";
    // The Runtime API as the real service gives it: host:port, no scheme, paths at
    // the root. The emulator serves it only under `/.rt`, so a small proxy moves the
    // paths there.
    let Some((collector, emulator, function)) =
        traced_via(test, &[], |e| format!("127.0.0.1:{}", at_root(e.port)))
    else {
        return;
    };

    let failed = text(&emulator.invoke(r#"{"error":"no table"}"#));
    assert!(
        failed.contains(r#"asked to fail: \"no table\""#)
            || failed.contains("asked to fail: \"no table\""),
        "{failed}"
    );
    let panicked = text(&emulator.invoke(r#"{"panic":"at the disco"}"#));
    assert!(panicked.contains("asked to panic"), "{panicked}");
    // Not JSON: lambda_runtime answers the error itself and never calls the handler;
    // that was counted as a success.
    let undecoded = text(&emulator.invoke("not json"));
    assert!(!undecoded.contains("\"echo\""), "{undecoded}");
    let ok = emulator.invoke(r#"{"after":true}"#);
    let answer: Value =
        serde_json::from_slice(&ok.stdout).unwrap_or_else(|_| panic!("{}", text(&ok)));
    assert_eq!(answer["echo"]["after"], true);

    let mut records = Vec::new();
    function.emf(4, &mut records);
    let errors: Vec<u64> = records
        .iter()
        .map(|r| r["Errors"].as_u64().unwrap())
        .collect();
    assert_eq!(errors, [1, 1, 1, 0]);

    let spans = collector.at_least(4);
    let status: Vec<(i64, String)> = spans
        .iter()
        .map(|s| {
            (
                s["status"]["code"].as_i64().unwrap(),
                s["status"]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(status[0].0, 2, "STATUS_CODE_ERROR: {status:?}");
    assert!(status[0].1.contains("asked to fail"), "{status:?}");
    assert_eq!(status[1].0, 2, "{status:?}");
    assert!(
        status[1].1.contains("panicked: asked to panic"),
        "{status:?}"
    );
    assert_eq!(status[2].0, 2, "{status:?}");
    assert!(status[2].1.contains("did not deserialise"), "{status:?}");
    assert_eq!(status[3].0, 0, "{status:?}");

    // `error.type`: the error type the Runtime API was told (less lambda_runtime's
    // leading `&`), but for a panic (told the type of its payload whatever the panic),
    // as the HTTP layer's.
    let types: Vec<&Value> = spans
        .iter()
        .map(|s| &s["attributes"]["error.type"])
        .collect();
    assert_eq!(types[0], BOXED_ERROR, "{types:?}");
    assert!(
        failed.contains(BOXED_ERROR),
        "the type the Runtime API was told: {failed}"
    );
    assert_eq!(types[1], "panic", "{types:?}");
    let undecodable = "lambda_runtime::deserializer::DeserializeError";
    assert_eq!(types[2], undecodable, "{types:?}");
    assert!(
        undecoded.contains(undecodable),
        "the type the Runtime API was told: {undecoded}"
    );
    assert!(types[3].is_null(), "{types:?}");
}

/// An answer the Runtime API never takes (the connection closes as it is posted): the
/// span is an error of type `response_not_posted`, and the EMF record counts it. Where
/// the handler failed already, its own error stays the span's status and type, and
/// the failed post is an event on the span. lambda_runtime ends `run` with the error,
/// and the function exits with it.
#[test]
fn an_answer_the_runtime_api_never_takes_is_traced_as_not_posted() {
    let test = "an_answer_the_runtime_api_never_takes_is_traced_as_not_posted";
    let not_posted = "the response could not be posted to the Runtime API";
    for (event, error_type, status) in [
        (r#"{"n":1}"#, "response_not_posted", not_posted),
        (r#"{"error":"no table"}"#, BOXED_ERROR, "asked to fail"),
    ] {
        let Some((collector, emulator, mut function)) = traced_via(test, &[], |e| {
            format!("127.0.0.1:{}", dropping_answers(e.port))
        }) else {
            return;
        };
        let mut command = emulator.invoke_command(event);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let _caller = Reaper(command.spawn().unwrap());

        let spans = collector.at_least(1);
        let span = &spans[0];
        assert_eq!(span["status"]["code"], 2, "error: {span}");
        assert_eq!(span["attributes"]["error.type"], error_type, "{span}");
        let message = span["status"]["message"].as_str().unwrap();
        assert!(message.contains(status), "{span}");
        let events = span["events"].as_array().unwrap();
        if error_type == BOXED_ERROR {
            assert_eq!(events.len(), 1, "{span}");
            assert!(
                events[0].as_str().unwrap().starts_with(not_posted),
                "{span}"
            );
        } else {
            assert!(events.is_empty(), "{span}");
        }
        let mut records = Vec::new();
        function.emf(1, &mut records);
        assert_eq!(records[0]["Errors"], 1, "{:?}", records[0]);
        let exit = exit_within(&mut function, Duration::from_secs(30));
        assert!(!exit.success(), "{exit}");
        let said = function.stderr.drain(Duration::from_millis(200)).to_owned();
        // lambda_runtime says why `run` ended: the connection closed mid-request.
        assert!(said.contains("IncompleteMessage"), "{said}");
    }
}

/// [`traced`], under the dynamic sampler with a base so small that no trace is sampled
/// without errors and an error weight so large that one failed invocation in the
/// window makes the probability 1.
fn sampled_after_errors(test: &str) -> Option<(Collector, Emulator, Function)> {
    traced(
        test,
        &[
            ("OTEL_TRACES_SAMPLER", "coldstart_dynamic"),
            ("OTEL_TRACES_SAMPLER_ARG", "1e-9"),
            ("COLDSTART_SAMPLER_K1", "1e12"),
            ("COLDSTART_SAMPLER_FLOOR", "0"),
        ],
    )
}

/// The dynamic sampler counts invocations: with a base so small that no trace is
/// sampled without errors, and an error weight so large that one failed invocation in
/// the window makes the probability 1, the invocation after a failed one is the only
/// one exported. Uncounted, none would be.
#[test]
fn the_dynamic_sampler_counts_invocations_and_their_errors() {
    let test = "the_dynamic_sampler_counts_invocations_and_their_errors";
    let Some((collector, emulator, function)) = sampled_after_errors(test) else {
        return;
    };
    let ok = emulator.invoke(r#"{"n":1}"#);
    assert!(ok.status.success(), "{}", text(&ok));
    let failed = text(&emulator.invoke(r#"{"error":"no table"}"#));
    assert!(failed.contains("asked to fail"), "{failed}");
    let after = emulator.invoke(r#"{"n":3}"#);
    assert!(after.status.success(), "{}", text(&after));

    let mut records = Vec::new();
    function.emf(3, &mut records);
    let spans = collector.at_least(1);
    assert_eq!(spans.len(), 1, "{spans:?}");
    // Not the first invocation (the cold one), nor the failed one.
    assert_eq!(
        spans[0]["attributes"]["faas.coldstart"], false,
        "{}",
        spans[0]
    );
    assert_eq!(spans[0]["status"]["code"], 0, "{}", spans[0]);
    // Each span is flushed before the next `/next`: had the first two been sampled,
    // they would have come before the third.
    assert_eq!(collector.spans().len(), 1);
}

/// An HTTP event answered with a 5xx is an error for the dynamic sampler, as in the
/// HTTP layer (the invocation after it is the only one sampled, as after a handler's
/// error), and not for Lambda: its EMF record counts no error.
#[test]
fn an_http_events_5xx_answer_is_an_error_for_the_sampler_and_not_for_lambda() {
    let test = "an_http_events_5xx_answer_is_an_error_for_the_sampler_and_not_for_lambda";
    let Some((collector, emulator, function)) = sampled_after_errors(test) else {
        return;
    };
    let ok = emulator.invoke(r#"{"n":1}"#);
    assert!(ok.status.success(), "{}", text(&ok));
    let unavailable = r#"{"version":"2.0","routeKey":"$default","rawPath":"/","requestContext":{"http":{"method":"GET"}},"status_code":503}"#;
    let answered = emulator.invoke(unavailable);
    assert!(answered.status.success(), "{}", text(&answered));
    let after = emulator.invoke(r#"{"n":3}"#);
    assert!(after.status.success(), "{}", text(&after));

    let mut records = Vec::new();
    function.emf(3, &mut records);
    let errors: Vec<u64> = records
        .iter()
        .map(|r| r["Errors"].as_u64().unwrap())
        .collect();
    assert_eq!(errors, [0, 0, 0], "{records:?}");
    let spans = collector.at_least(1);
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(
        spans[0]["attributes"]["faas.trigger"], "other",
        "{}",
        spans[0]
    );
    assert_eq!(
        spans[0]["attributes"]["faas.coldstart"], false,
        "{}",
        spans[0]
    );
    assert_eq!(collector.spans().len(), 1);
}

/// An HTTP event that carries a `traceparent` (an HTTP API's, and a REST API's in its
/// `multiValueHeaders` under a mixed-case name): the invocation span is the caller's
/// span's child, in the caller's trace; the X-Ray header stays a link.
#[test]
fn an_http_events_traceparent_makes_the_callers_span_the_parent() {
    let test = "an_http_events_traceparent_makes_the_callers_span_the_parent";
    let Some((collector, emulator, _function)) = traced(test, &[]) else {
        return;
    };
    let parent = "00f067aa0ba902b7";
    let http_api = "4bf92f3577b34da6a3ce929d0e0e4736";
    let rest_api = "0af7651916cd43dd8448eb211c80319c";
    let events = [
        (
            http_api,
            format!(
                r#"{{"version":"2.0","routeKey":"$default","rawPath":"/","headers":{{"host":"api.example","traceparent":"00-{http_api}-{parent}-01"}},"requestContext":{{"http":{{"method":"GET"}}}}}}"#
            ),
        ),
        (
            rest_api,
            format!(
                r#"{{"resource":"/","httpMethod":"GET","headers":null,"multiValueHeaders":{{"Traceparent":["00-{rest_api}-{parent}-01"]}},"requestContext":{{}}}}"#
            ),
        ),
    ];
    // The `$default` route is none: the span keeps the function's name; a REST API's
    // resource names it.
    for ((trace, event), name) in events.iter().zip(["lambda-hello", "/"]) {
        let output = emulator.invoke(event);
        let answer: Value =
            serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", text(&output)));
        assert_eq!(answer["greeting"], "hello");
        let span = collector.span_of(trace);
        assert_eq!(span["name"], name, "{span}");
        assert_eq!(span["parent_span_id"], parent, "{span}");
        assert_eq!(span["attributes"]["faas.trigger"], "http", "{span}");
        assert_eq!(span["links"].as_array().map(Vec::len), Some(1), "{span}");
    }
}

/// An HTTP event's span is named after its route and carries the HTTP server
/// conventions' attributes, from the event's request and the answer's `statusCode`: a
/// 5xx is an error, `error.type` its code. An answer with no `statusCode` gives no
/// status code.
#[test]
fn an_http_events_span_has_the_http_server_attributes_and_the_answers_status() {
    let test = "an_http_events_span_has_the_http_server_attributes_and_the_answers_status";
    let Some((collector, emulator, _function)) = traced(test, &[]) else {
        return;
    };
    let (failing, plain) = (
        "5bf92f3577b34da6a3ce929d0e0e4736",
        "6bf92f3577b34da6a3ce929d0e0e4736",
    );
    let parent = "00f067aa0ba902b7";
    let http_api = format!(
        r#"{{"version":"2.0","routeKey":"GET /items/{{id}}","rawPath":"/items/42","rawQueryString":"sig=secret","headers":{{"traceparent":"00-{failing}-{parent}-01"}},"requestContext":{{"domainName":"abc.lambda-url.eu-west-1.on.aws","http":{{"method":"GET","protocol":"HTTP/1.1","sourceIp":"203.0.113.9","userAgent":"curl/8.5.0"}}}},"status_code":503}}"#
    );
    let rest_api = format!(
        r#"{{"resource":"/items/{{id}}","path":"/items/7","httpMethod":"POST","multiValueHeaders":{{"traceparent":["00-{plain}-{parent}-01"]}},"requestContext":{{"identity":{{"sourceIp":"198.51.100.4"}}}}}}"#
    );
    let output = emulator.invoke(&http_api);
    let answer: Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", text(&output)));
    assert_eq!(answer["statusCode"], 503, "{answer}");
    let span = collector.span_of(failing);
    let attributes = &span["attributes"];
    // Named after its route, as the conventions' API Gateway section asks.
    assert_eq!(span["name"], "/items/{id}", "{span}");
    assert_eq!(attributes["faas.trigger"], "http", "{span}");
    assert_eq!(attributes["http.request.method"], "GET", "{span}");
    assert_eq!(attributes["http.route"], "/items/{id}", "{span}");
    assert_eq!(attributes["url.path"], "/items/42", "{span}");
    assert_eq!(attributes["url.query"], "sig=REDACTED", "{span}");
    assert_eq!(attributes["url.scheme"], "https", "{span}");
    assert_eq!(
        attributes["server.address"], "abc.lambda-url.eu-west-1.on.aws",
        "{span}"
    );
    assert_eq!(attributes["client.address"], "203.0.113.9", "{span}");
    assert_eq!(attributes["user_agent.original"], "curl/8.5.0", "{span}");
    assert_eq!(attributes["network.protocol.version"], "1.1", "{span}");
    assert_eq!(attributes["http.response.status_code"], 503, "{span}");
    assert_eq!(attributes["error.type"], "503", "{span}");
    assert_eq!(span["status"]["code"], 2, "STATUS_CODE_ERROR: {span}");

    let output = emulator.invoke(&rest_api);
    assert!(output.status.success(), "{}", text(&output));
    let span = collector.span_of(plain);
    let attributes = &span["attributes"];
    assert_eq!(span["name"], "/items/{id}", "{span}");
    assert_eq!(attributes["http.request.method"], "POST", "{span}");
    assert_eq!(attributes["http.route"], "/items/{id}", "{span}");
    assert_eq!(attributes["client.address"], "198.51.100.4", "{span}");
    assert_eq!(attributes.get("http.response.status_code"), None, "{span}");
    assert_eq!(span["status"]["code"], 0, "unset: {span}");
}

/// Queues an invocation, then starts the function with `vars`, which must make it
/// fail before it serves, and checks what happened: its exit `code`, the report to
/// the Runtime API as `error_type`, the line it `printed`, and what the caller of the
/// queued invocation was `answered` (the emulator answers the first queued
/// invocation with the init error it is posted). Skipped where cargo-lambda is
/// missing outside CI.
fn expect_failed_start<V: AsRef<OsStr>>(
    test: &str,
    vars: &[(&str, V)],
    code: i32,
    error_type: &str,
    printed: &str,
    answered: &str,
) {
    let Some(cargo_lambda) = cargo_lambda(test) else {
        return;
    };
    let emulator = Emulator::start(cargo_lambda);
    let caller = emulator.queue(r#"{"queued":true}"#);
    let mut function = Function::start(&emulator.runtime_api(), vars);
    let status = exit_within(&mut function, Duration::from_secs(30));
    let stderr = function.stderr.drain(Duration::from_millis(200)).to_owned();
    let answer = text(&caller.wait_with_output().unwrap());
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "reported to the Lambda Runtime API as {error_type}"
        )),
        "{stderr}"
    );
    // One failure, one report: the API refuses a second one.
    assert_eq!(
        stderr.matches("reported to the Lambda Runtime API").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("could not report"), "{stderr}");
    assert!(stderr.contains(printed), "{stderr}");
    assert!(answer.contains(answered), "the caller got: {answer}");
}

#[test]
fn an_init_failure_reaches_the_runtime_api_and_the_waiting_caller() {
    // A failed critical init: EX_SOFTWARE, and the caller gets the init's error.
    expect_failed_start(
        "an_init_failure_reaches_the_runtime_api_and_the_waiting_caller",
        &[("HELLO_GREETING", " ")],
        70,
        "Runtime.InitError",
        "HELLO_GREETING is set but empty",
        "HELLO_GREETING is set but empty",
    );
}

#[test]
fn a_panicking_init_reaches_the_runtime_api_and_the_waiting_caller() {
    // A critical init that panics: the same as one that fails, the panic named.
    expect_failed_start(
        "a_panicking_init_reaches_the_runtime_api_and_the_waiting_caller",
        &[("HELLO_GREETING", "!panic")],
        70,
        "Runtime.InitError",
        "init `lambda_hello::check_greeting` panicked: the greeting check panicked, as asked",
        "the greeting check panicked, as asked",
    );
}

#[test]
fn main_failing_before_run_is_an_init_failure_the_waiting_caller_sees() {
    // main returned its error before `run`: exit 1, as Rust's main does; the caller
    // gets the error's text, as Rust prints it.
    expect_failed_start(
        "main_failing_before_run_is_an_init_failure_the_waiting_caller_sees",
        &[("HELLO_MAX_KEYS", "lots")],
        1,
        "Runtime.ExitError",
        "set HELLO_MAX_KEYS to a whole number from 1 to 1000000, got `lots`",
        "main returned an error before the function started serving: Error: \\\"set HELLO_MAX_KEYS to a whole number from 1 to 1000000, got `lots`\\\"",
    );
}

/// Regression: a greeting that is not UTF-8 was taken for unset, and every answer
/// silently said `hello`. It is a failed init, reported as the empty one is.
#[test]
fn a_greeting_that_is_not_utf8_is_an_init_failure_the_waiting_caller_sees() {
    use std::os::unix::ffi::OsStrExt;
    expect_failed_start(
        "a_greeting_that_is_not_utf8_is_an_init_failure_the_waiting_caller_sees",
        // `héllo` in Latin-1.
        &[("HELLO_GREETING", OsStr::from_bytes(b"h\xe9llo"))],
        70,
        "Runtime.InitError",
        "HELLO_GREETING must be UTF-8, got `h\u{fffd}llo`; give the greeting in UTF-8 or unset it",
        "HELLO_GREETING must be UTF-8",
    );
}

#[test]
fn a_bad_lambda_variable_is_one_init_failure_the_waiting_caller_sees() {
    // `run` reports it; main then returns the error run gave it, which is no second
    // failure (it was reported again, as main ending before `run`).
    expect_failed_start(
        "a_bad_lambda_variable_is_one_init_failure_the_waiting_caller_sees",
        &[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")],
        1,
        "Runtime.ConfigError",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is `lots`",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is `lots`",
    );
}

/// Where nothing listens: port 1. A free port of the moment could be another test's
/// emulator by the time the function connects (and it would take that test's
/// invocation); tests are given ephemeral ports, never 1.
const CLOSED_API: &str = "127.0.0.1:1";

/// The function run with `vars` against a Runtime API where nothing listens, which
/// it fails to reach after its start-up: what it said on stderr.
fn against_a_closed_api(vars: &[(&str, &str)]) -> String {
    let out = coldstart_test_support::output_within(
        Command::new(FUNCTION)
            .env("AWS_LAMBDA_RUNTIME_API", CLOSED_API)
            .env("AWS_LAMBDA_FUNCTION_NAME", "lambda-hello")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .envs(vars.iter().copied()),
        Duration::from_secs(60),
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_plan_follows_the_memory_size_and_a_setting_overrides_it() {
    // The function prints its plan, then fails to reach the API, which is all this
    // test needs.
    let plan = |vars: &[(&str, &str)]| {
        against_a_closed_api(&[vars, &[("COLDSTART_LOG", "debug")]].concat())
    };
    let small = plan(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")]);
    assert!(
        small.contains("0.29 cores (AWS_LAMBDA_FUNCTION_MEMORY_SIZE)"),
        "{small}"
    );
    assert!(small.contains("platform             aws-lambda"), "{small}");
    let flavor = |report: &str| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with("flavor"))
            .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_owned())
    };
    assert_eq!(flavor(&small).as_deref(), Some("current_thread"), "{small}");
    let overridden = plan(&[
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
        ("COLDSTART_FLAVOR", "multi_thread"),
    ]);
    assert_eq!(
        flavor(&overridden).as_deref(),
        Some("multi_thread"),
        "{overridden}"
    );
}

/// `HELLO_MAX_KEYS` as `main` reads it before `run`, against a Runtime API it then
/// fails to reach: what the function said.
fn with_max_keys(value: &str) -> String {
    against_a_closed_api(&[
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("HELLO_MAX_KEYS", value),
    ])
}

/// Blank is unset, as for coldstart's own settings: a compose file's or a template's
/// empty `HELLO_MAX_KEYS` stopped the function from starting. Spaces around a number
/// are not part of it: ` 1 ` is 1, and an event of two keys is refused.
#[test]
fn a_blank_max_keys_is_unset_and_spaces_are_not_part_of_it() {
    let test = "a_blank_max_keys_is_unset_and_spaces_are_not_part_of_it";
    for blank in ["", " "] {
        let stderr = with_max_keys(blank);
        assert!(!stderr.contains("HELLO_MAX_KEYS"), "`{blank}`: {stderr}");
        assert!(stderr.contains(CLOSED_API), "`{blank}`: {stderr}");
    }
    let Some(cargo_lambda) = cargo_lambda(test) else {
        return;
    };
    let emulator = Emulator::start(cargo_lambda);
    let _function = Function::start(&emulator.runtime_api(), &[("HELLO_MAX_KEYS", " 1 ")]);
    let one = emulator.invoke(r#"{"a":1}"#);
    assert!(one.status.success(), "{}", text(&one));
    let two = text(&emulator.invoke(r#"{"a":1,"b":2}"#));
    assert!(
        two.contains("the event has 2 keys, at most 1 are accepted"),
        "{two}"
    );
}

/// Regression: `HELLO_MAX_KEYS=0` was taken, and every event with a key then failed
/// at its invocation; a number too large for the machine was said to be no whole
/// number. Both are refused before serving, with the range that is taken.
#[test]
fn a_max_keys_of_0_or_past_its_bound_is_refused_with_the_range() {
    for refused in ["0", "1000001", "18446744073709551616", "lots"] {
        let stderr = with_max_keys(refused);
        assert!(
            stderr.contains(&format!(
                "set HELLO_MAX_KEYS to a whole number from 1 to 1000000, got `{refused}`"
            )),
            "`{refused}`: {stderr}"
        );
    }
    // Taken: the function went on to reach for the Runtime API.
    let highest = with_max_keys("1000000");
    assert!(!highest.contains("HELLO_MAX_KEYS"), "{highest}");
    assert!(highest.contains(CLOSED_API), "{highest}");
}

#[test]
fn missing_lambda_variables_are_a_clear_error_not_a_panic() {
    let output = coldstart_test_support::output_within(
        Command::new(FUNCTION)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env("AWS_LAMBDA_FUNCTION_NAME", "f")
            .env_remove("AWS_LAMBDA_FUNCTION_VERSION")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot run as a Lambda function: AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_VERSION not set; AWS_LAMBDA_FUNCTION_MEMORY_SIZE is `lots`"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // One line: `main` returns the error and Rust prints it (no Runtime API to
    // report it to).
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("Error: cannot run as a Lambda function"),
        "{stderr}"
    );
}

/// SIGTERM runs the final flush, which sends what is still queued, and the process
/// exits 0. A proxy gives each invocation a deadline of 50 ms, the margin the flush
/// before the next `/next` keeps for asking (so that flush has no time at all), and
/// the scheduled export waits a minute. The first span leaves as the exporter starts
/// (it sends at once what was queued before it); the second is still queued when the
/// signal comes, and only the final flush can send it (the per-invocation flushes had
/// sent everything before).
#[test]
fn sigterm_runs_the_final_flush_and_the_process_exits_cleanly() {
    let test = "sigterm_runs_the_final_flush_and_the_process_exits_cleanly";
    let (asked, nexts) = std::sync::mpsc::channel();
    let Some((collector, emulator, mut function)) = traced_via(
        test,
        &[
            ("COLDSTART_LAMBDA_EXTENSION", "on"),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
        move |e| {
            // Each `/next` the function asks for, seen: it asks once the flush after
            // the invocation before has ended (or been skipped).
            let deadline = Some(Duration::from_millis(50));
            let seen = move || {
                let _ = asked.send(());
            };
            format!("127.0.0.1:{}", proxy_with(e.port, deadline, false, seen))
        },
    ) else {
        return;
    };
    let next = |n: usize| {
        nexts
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the function did not ask for invocation {n}"));
    };
    next(0);
    let output = emulator.invoke(r#"{"n":0}"#);
    assert!(output.status.success(), "{}", text(&output));
    next(1);
    function
        .stderr
        .wait_for("no time was left before the invocation's deadline");
    collector.at_least(1);
    let output = emulator.invoke(r#"{"n":1}"#);
    assert!(output.status.success(), "{}", text(&output));
    // The second invocation has ended, its flush skipped: its span waits.
    next(2);
    let before = collector.spans();
    assert_eq!(before.len(), 1, "sent before the signal: {before:?}");
    // SIGTERM is what Lambda sends before shutting down, now that the extension is
    // registered (the emulator accepted it: no "could not register" line below).
    // SAFETY: kill with a valid pid and signal number has no memory effects.
    unsafe { libc::kill(function.child.0.id() as i32, libc::SIGTERM) };
    let status = exit_within(&mut function, Duration::from_secs(30));
    let stderr = function.stderr.drain(Duration::from_millis(200)).to_owned();
    assert_eq!(
        status.code(),
        Some(0),
        "the hooks ran and the process exited: {stderr}"
    );
    assert!(
        stderr.contains("coldstart: lambda: final flush done, 0 spans left"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("could not register"),
        "the emulator took the registration: {stderr}"
    );
    let spans = collector.spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
}

/// An invocation still running near its deadline is recorded before Lambda stops it
/// (which ends the process, and would lose the record): its span, as a `timeout`
/// error, and its EMF record leave while the handler still runs. A proxy gives each
/// invocation a deadline 1 s ahead, as Lambda would; the emulator does not, and stops
/// nothing, so the handler here finishes and its answer is posted late, recorded
/// once.
#[test]
fn an_invocation_still_running_near_its_deadline_is_recorded_as_timed_out() {
    let test = "an_invocation_still_running_near_its_deadline_is_recorded_as_timed_out";
    // Spans leave only through the flushes.
    let Some((collector, emulator, mut function)) =
        traced_via(test, &[("OTEL_BSP_SCHEDULE_DELAY", "60000")], |e| {
            format!("127.0.0.1:{}", proxy(e.port, Some(Duration::from_secs(1))))
        })
    else {
        return;
    };
    let slow = emulator
        .invoke_command(r#"{"sleep_ms":4000}"#)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut slow = Reaper(slow);

    let spans = collector.at_least(1);
    assert!(
        slow.0.try_wait().unwrap().is_none(),
        "the span left while the handler still ran"
    );
    let span = &spans[0];
    assert_eq!(span["status"]["code"], 2, "error: {span}");
    assert_eq!(span["attributes"]["error.type"], "timeout", "{span}");
    assert_eq!(span["attributes"]["faas.coldstart"], true);
    let mut records = Vec::new();
    function.emf(1, &mut records);
    assert_eq!(records[0]["Errors"], 1, "{:?}", records[0]);
    assert_eq!(records[0]["timed_out"], true);
    assert_eq!(records[0]["ColdStart"], 1);
    assert_eq!(
        records[0]["faas.invocation_id"],
        span["attributes"]["faas.invocation_id"]
    );
    function.stderr.wait_for("recorded as timed out");

    // The handler finishes; Lambda would have stopped it. Its answer goes out, and
    // nothing more is recorded of it.
    assert!(slow.0.wait().unwrap().success());
    let output = emulator.invoke(r#"{"n":1}"#);
    assert!(output.status.success(), "{}", text(&output));
    let spans = collector.at_least(2);
    function.emf(2, &mut records);
    assert_eq!(spans.len(), 2, "one span per invocation: {spans:?}");
    assert_eq!(spans[1]["status"]["code"], 0, "{}", spans[1]);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[1]["Errors"], 0);
    assert!(records[1].get("timed_out").is_none());
}

/// With the collector down, the flush before each `/next` makes its attempt and gives
/// up: it does not wait out coldstart's retry backoff (100, 200 and 400 ms plus
/// jitter), which would hold every next invocation for most of a second, billed. The
/// spans are counted as dropped and the failure is said once.
#[test]
fn with_the_collector_down_the_next_invocation_is_not_held_by_retries() {
    let test = "with_the_collector_down_the_next_invocation_is_not_held_by_retries";
    let Some(cargo_lambda) = cargo_lambda(test) else {
        return;
    };
    let emulator = Emulator::start(cargo_lambda);
    // Port 1, where nothing listens (tests are given ephemeral ports): every export
    // is refused.
    let closed = "http://127.0.0.1:1".to_owned();
    // Queued before the function starts: it takes each as soon as its flush lets it
    // ask for the next, so the time between two answers is the first one's flush,
    // not the callers' arrival.
    let callers: Vec<_> = (0..3)
        .map(|i| emulator.queue(&format!(r#"{{"n":{i}}}"#)))
        .collect();
    let function = Function::start(
        &emulator.runtime_api(),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", closed.as_str())],
    );
    for mut caller in callers {
        assert!(caller.wait().unwrap().success());
    }
    let mut records = Vec::new();
    function.emf(3, &mut records);
    let mut answered: Vec<u64> = records
        .iter()
        .map(|r| r["_aws"]["Timestamp"].as_u64().unwrap())
        .collect();
    answered.sort_unstable();
    let gaps: Vec<u64> = answered.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("{test}: answers {gaps:?} ms apart");
    assert!(
        gaps.iter().all(|&ms| ms < 400),
        "answers {gaps:?} ms apart: the flush before /next waited out the backoff"
    );
    let mut stderr = function.stderr;
    let said = stderr.wait_for("traces: export failed").to_owned();
    assert!(said.contains("Connection refused"), "{said}");
}

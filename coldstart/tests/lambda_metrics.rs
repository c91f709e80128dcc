//! On AWS Lambda no `/metrics` listener runs: metrics the program records reach
//! nothing without a Pushgateway, and that is said once, not left unsaid. A server in
//! a thread stands in for the Runtime API (the real emulator is used by the Lambda
//! example's tests, which record no metrics of their own). Each case runs in a child
//! process, this test binary again, told so by a variable: the Lambda variables and
//! the recorder are the process's.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

const CASE: &str = "COLDSTART_TEST_LAMBDA_METRICS_CASE";

/// What the line says.
const SAID: &str = "nothing exports them";

/// Answers `/next` with `invocations` invocations, then holds it; sends a message at
/// every `/next` asked.
fn runtime_api(invocations: usize) -> (u16, Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (asked, nexts) = channel();
    std::thread::spawn(move || {
        let given = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for stream in listener.incoming().map_while(Result::ok) {
            let (asked, given) = (asked.clone(), given.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                while let Some((request, _)) = coldstart_test_support::read_request(&mut reader) {
                    if !(request.starts_with("GET") && request.contains("/invocation/next")) {
                        writer
                            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                            .unwrap();
                        continue;
                    }
                    let _ = asked.send(());
                    let n = given.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n >= invocations {
                        std::thread::sleep(Duration::from_secs(3600));
                        return;
                    }
                    let deadline = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis()
                        + 60_000;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: req-{n}\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:eu-west-1:123456789012:function:counted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
                    );
                    writer.write_all(answer.as_bytes()).unwrap();
                }
            });
        }
    });
    (port, nexts)
}

/// The function of a case: each invocation counts itself.
fn function() {
    coldstart::Builder::new().block_on(async {
        let handler = coldstart::lambda::service_fn(
            |_: coldstart::lambda::LambdaEvent<serde_json::Value>| async {
                metrics::counter!("invocations_seen_total").increment(1);
                Ok::<_, coldstart::lambda::Error>(serde_json::Value::Null)
            },
        );
        let _ = coldstart::lambda::run(handler).await;
    });
}

/// Runs `test`'s case with the Lambda variables and `vars` for two invocations; its
/// stderr once it asked for the third.
fn two_invocations(test: &str, vars: &[(&str, &str)]) -> String {
    let (port, nexts) = runtime_api(2);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(CASE, "1")
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "counted")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/06/[$LATEST]0123")
        .envs(vars.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    for n in 1..=3 {
        nexts
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the function did not ask for invocation {n}"));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Two invocations that record a counter, no push URL: one line, naming the metric
/// and the setting that exports it.
#[test]
fn recorded_metrics_nothing_exports_are_said_once() {
    let test = "recorded_metrics_nothing_exports_are_said_once";
    if std::env::var_os(CASE).is_some() {
        return function();
    }
    let stderr = two_invocations(test, &[]);
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains(SAID)).collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains("`invocations_seen_total`")
            && said[0].contains("COLDSTART_METRICS_PUSH_URL"),
        "{stderr}"
    );
}

/// With a `/metrics` address set, the listener runs on Lambda too: nothing is said.
#[test]
fn with_a_listener_nothing_is_said() {
    let test = "with_a_listener_nothing_is_said";
    if std::env::var_os(CASE).is_some() {
        return function();
    }
    let stderr = two_invocations(test, &[("COLDSTART_METRICS_ADDR", "127.0.0.1:0")]);
    assert!(!stderr.contains(SAID), "{stderr}");
}

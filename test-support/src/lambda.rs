//! A stand-in for the Lambda Runtime API, for tests that need one in a thread (the
//! real emulator, `cargo lambda watch`, is used by the Lambda example's tests).

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use crate::read_request;

/// Answers the `n`th `/next` (from 0) with the invocation `req-<n>` after waiting
/// `waits[n]`, as many as `waits` holds, then holds `/next` unanswered; takes every
/// other request with `202 Accepted`. Returns its port, and a receiver that hears of
/// every `/next` as it is asked.
pub fn runtime_api(waits: &[Duration]) -> (u16, Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (asked, nexts) = channel();
    let waits: Arc<[Duration]> = waits.into();
    std::thread::spawn(move || {
        let given = Arc::new(AtomicUsize::new(0));
        for stream in listener.incoming().map_while(Result::ok) {
            let (asked, given, waits) = (asked.clone(), given.clone(), waits.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                while let Some((request, _)) = read_request(&mut reader) {
                    if !(request.starts_with("GET") && request.contains("/invocation/next")) {
                        writer
                            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                            .unwrap();
                        continue;
                    }
                    let _ = asked.send(());
                    let n = given.fetch_add(1, Ordering::SeqCst);
                    let Some(&wait) = waits.get(n) else {
                        std::thread::sleep(Duration::from_secs(3600));
                        return;
                    };
                    std::thread::sleep(wait);
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

/// Runs this test binary again as a Lambda function for `test`, with `case` set (the
/// variable that tells the test to be the function), the Lambda variables of a
/// function named `function` and `vars`, against [`runtime_api`] given `waits`; once
/// the function has asked for one `/next` more than `waits` answers, it is killed and
/// its stderr returned.
pub fn run_as_function(
    case: &str,
    test: &str,
    function: &str,
    waits: &[Duration],
    vars: &[(&str, &str)],
) -> String {
    use std::process::{Command, Stdio};
    let (port, nexts) = runtime_api(waits);
    let mut child = crate::Reaper(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture"])
            .env(case, "1")
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/06/[$LATEST]0123")
            .envs(vars.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Read as it comes: a function that writes much is not stopped on a full pipe,
    // and one that fails shows why.
    let mut lines = crate::Lines::of(&mut child.0);
    let within = waits.iter().sum::<Duration>() + Duration::from_secs(30);
    for n in 1..=waits.len() + 1 {
        // A function that ended (a refused setting, a failed init) is said at once,
        // not after the whole wait.
        let asked = crate::poll(within, || {
            match nexts.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => Some(true),
                Err(_) => child.0.try_wait().ok().flatten().map(|_| false),
            }
        });
        if asked != Some(true) {
            let status = child.0.try_wait().ok().flatten();
            child.kill();
            panic!(
                "the function did not ask for invocation {n} (ended: {status:?}); its stderr:\n{}",
                lines.drain(Duration::from_millis(500))
            );
        }
    }
    child.kill();
    // Everything it wrote: the pipe is closed once it has ended.
    lines.drain(Duration::from_millis(500)).to_owned()
}

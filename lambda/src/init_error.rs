/*!
Init failures reported to the Runtime API (`POST /runtime/init/error`), which
`lambda_runtime` never does: without the report, a function that cannot start shows
its caller nothing but a timeout or a bare "Runtime exited" error.

Reports happen on the way out of a process that is about to exit, possibly on a
runtime thread inside tokio, so the request is a plain blocking HTTP/1.1 exchange on
a std socket with short timeouts: no runtime, no client pool. It must never panic and
never hang the exit for more than the timeouts.
*/

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::failure::{ON_START_FAILURE, StartFailure};

use crate::function::RuntimeApi;

/// Set once the runtime loop starts asking for invocations: from then on a failure is
/// no longer an init failure.
static SERVING: AtomicBool = AtomicBool::new(false);

/// How long connecting, writing and reading may each take.
const TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn mark_serving() {
    SERVING.store(true, Ordering::Release);
}

/// Whether the runtime loop has started (the function got past init).
pub fn serving() -> bool {
    SERVING.load(Ordering::Acquire)
}

#[linkme::distributed_slice(ON_START_FAILURE)]
static REPORT_START_FAILURE: fn(&StartFailure<'_>) = report_start_failure;

fn report_start_failure(failure: &StartFailure<'_>) {
    report_if_initialising(failure.cause.error_type(), failure.message);
}

/// Reports an init failure when on Lambda and still initialising; prints what
/// happened to the report. Does nothing elsewhere.
pub(crate) fn report_if_initialising(error_type: &str, message: &str) {
    if serving() {
        return;
    }
    let Some(value) = std::env::var_os("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    // Trimmed: a value with spaces around it is refused as a setting (lambda_runtime
    // cannot use it), and that refusal is the failure to report.
    let Ok(api) = RuntimeApi::parse(value.to_string_lossy().trim()) else {
        return;
    };
    // The first report is the failure; what follows from it (`main` returning the
    // error `run` gave it) is not another one, and the API takes one report only.
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if REPORTED.swap(true, Ordering::AcqRel) {
        return;
    }
    match report_init_error(&api, error_type, message) {
        Ok(()) => coldstart_bootstrap::say!(
            "coldstart: reported to the Lambda Runtime API as {error_type}"
        ),
        Err(e) => coldstart_bootstrap::say!(
            "coldstart: could not report the init failure to the Lambda Runtime API ({e})"
        ),
    }
}

/// Posts `{"errorType": .., "errorMessage": ..}` to `/2018-06-01/runtime/init/error`.
///
/// # Errors
///
/// When the Runtime API cannot be reached or does not answer with a 2xx status.
pub fn report_init_error(api: &RuntimeApi, error_type: &str, message: &str) -> io::Result<()> {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    let status = post(
        api,
        "/2018-06-01/runtime/init/error",
        &[("Lambda-Runtime-Function-Error-Type", error_type)],
        body.as_bytes(),
    )
    .map_err(|e| io::Error::new(e.kind(), api.failed(&e)))?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "the Runtime API answered {status}"
        )))
    }
}

/// One blocking `POST` with `Connection: close`; returns the status code.
fn post(api: &RuntimeApi, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<u16> {
    // Every address the name has, as lambda_runtime tries them (`localhost` may be
    // `::1` first, where an emulator does not listen).
    let mut last = None;
    let mut connected = None;
    for address in api.authority.to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, TIMEOUT) {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = connected.ok_or_else(|| {
        last.unwrap_or_else(|| {
            io::Error::other(format!("`{}` resolves to no address", api.authority))
        })
    })?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        api.path(path),
        api.authority,
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {}\r\n", value.replace(['\r', '\n'], " ")));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    status_code(&head[..read])
        .ok_or_else(|| io::Error::other("the Runtime API's answer is not HTTP"))
}

/// The status code of an HTTP/1.x status line.
pub(crate) fn status_code(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head.get(..12)?).ok()?;
    let code = line.strip_prefix("HTTP/1.")?.get(2..5)?;
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 202 Accepted\r\n"), Some(202));
        assert_eq!(status_code(b"HTTP/1.0 500 x"), Some(500));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(status_code(b"HTTP/1.1"), None);
    }

    /// A one-connection server in a thread stands in for the Runtime API here to
    /// check the bytes sent; the real emulator is used by the example's tests.
    #[test]
    fn posts_the_error_as_json_under_the_base_path() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&got).contains("\"errorMessage\"") {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let api = RuntimeApi::parse(&format!("http://127.0.0.1:{port}/.rt")).unwrap();
        report_init_error(
            &api,
            "Runtime.InitError",
            "init `db` failed: \"no\"\nsecond",
        )
        .unwrap();
        let request = server.join().unwrap();
        assert!(
            request.starts_with("POST /.rt/2018-06-01/runtime/init/error HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Lambda-Runtime-Function-Error-Type: Runtime.InitError\r\n"));
        assert!(request.ends_with(r#"{"errorMessage":"init `db` failed: \"no\"\nsecond","errorType":"Runtime.InitError"}"#), "{request}");
    }

    #[test]
    fn an_unreachable_api_is_an_error_not_a_hang() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let api = RuntimeApi::parse(&format!("127.0.0.1:{port}")).unwrap();
        let err = report_init_error(&api, "T", "m").unwrap_err().to_string();
        // A wrong emulator address is the usual cause: the message names it.
        assert!(
            err.starts_with(&format!("AWS_LAMBDA_RUNTIME_API=127.0.0.1:{port}: ")),
            "{err}"
        );
    }
}

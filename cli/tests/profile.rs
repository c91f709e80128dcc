//! `cargo coldstart profile` end to end: the HTTP example's recorded profile moves a
//! registration its first request did not read after the first response on the next
//! run; the Lambda example's profile through the real emulator; a program that is not
//! built with coldstart is a clear error.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::process::Command;

use coldstart_test_support::temp_file;

mod support;
use support::{LAMBDA_PACKAGE, cargo_lambda, example, planned_order};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-coldstart");

/// The longest a `profile` run here may take: one that hangs fails its test.
const WITHIN: std::time::Duration = std::time::Duration::from_secs(300);

#[test]
fn a_recorded_profile_changes_the_order_of_the_next_run() {
    let server = example("http-server");
    // A stale profile: it says the first request needs the client pool.
    let stale = temp_file("stale.profile");
    std::fs::write(
        &stale,
        "coldstart-profile 1\nneeded 1 static http_server::CLIENT_POOL\nneeded 1 static http_server::CONFIG\n",
    )
    .unwrap();
    let (before, _) = planned_order(&server, Some(&stale));
    assert!(before.contains("http_server::CLIENT_POOL"), "{before}");

    let recorded = temp_file("recorded.profile");
    let out = coldstart_test_support::output_within(
        Command::new(TOOL)
            .args(["profile", "--out"])
            .arg(&recorded)
            .arg("--")
            .arg(&server)
            .env("COLDSTART_PROFILE", &stale)
            .env("COLDSTART_METRICS_ADDR", "off")
            .env("OTEL_TRACES_EXPORTER", "none"),
        WITHIN,
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("later"), "{table}");
    assert!(table.contains("needed"), "{table}");
    let text = std::fs::read_to_string(&recorded).unwrap();
    // The first request read the config, not the pool: the pool moves after it.
    assert!(
        text.lines()
            .any(|l| l.starts_with("needed") && l.ends_with("http_server::CONFIG")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("later") && l.ends_with("http_server::CLIENT_POOL")),
        "{text}"
    );
    let (before, after) = planned_order(&server, Some(&recorded));
    assert!(before.contains("http_server::CONFIG"), "{before}");
    assert!(!before.contains("CLIENT_POOL"), "{before}");
    assert!(after.contains("http_server::CLIENT_POOL"), "{after}");
}

/// `profile` of the Lambda example through the emulator with `event`, into
/// `recorded`, the function run with the `NAME=value` settings in `settings`.
fn profile_lambda(
    cargo_lambda: &str,
    event: &std::path::Path,
    recorded: &std::path::Path,
    settings: &[&str],
) -> std::process::Output {
    coldstart_test_support::output_within(
        Command::new(TOOL)
            .args(["profile", "--out"])
            .arg(recorded)
            .arg("--lambda-event")
            .arg(event)
            .args(["--cargo-lambda", cargo_lambda, "--package-dir"])
            .arg(LAMBDA_PACKAGE)
            .args(["--", "env"])
            .args(settings)
            .arg(example("lambda-hello")),
        WITHIN,
    )
}

#[test]
fn a_lambda_function_is_profiled_through_the_emulator() {
    let Some(cargo_lambda) = cargo_lambda("a_lambda_function_is_profiled_through_the_emulator")
    else {
        return;
    };
    // 6 MB, Lambda's largest event (in whitespace, which the function's answer does
    // not echo): more than the sockets hold before the function takes it; the tool
    // waited for ever writing it.
    let event = temp_file("event.json");
    let padding = " ".repeat(6_000_000 - 20);
    std::fs::write(&event, format!(r#"{{"hello":"world"}}{padding}"#)).unwrap();
    let recorded = temp_file("lambda.profile");
    let out = profile_lambda(&cargo_lambda, &event, &recorded, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&recorded).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("needed") && l.ends_with("lambda_hello::GREETING")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.ends_with("lambda_hello::check_greeting")),
        "{text}"
    );
}

/// A function whose init fails (a bad setting) is said with the error it reported;
/// the tool said only that its RSS could not be read, or that no `/next` came.
#[test]
fn a_lambda_function_whose_init_fails_is_said_with_its_error() {
    let Some(cargo_lambda) =
        cargo_lambda("a_lambda_function_whose_init_fails_is_said_with_its_error")
    else {
        return;
    };
    let event = temp_file("init-error-event.json");
    std::fs::write(&event, r#"{"hello":"world"}"#).unwrap();
    let recorded = temp_file("init-error.profile");
    let out = profile_lambda(
        &cargo_lambda,
        &event,
        &recorded,
        &["COLDSTART_STRATEGY=fast"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Runtime.ConfigError"), "{stderr}");
    assert!(
        stderr.contains("set COLDSTART_STRATEGY to one of"),
        "{stderr}"
    );
    assert!(!recorded.exists());
}

#[test]
fn a_program_without_coldstart_is_a_clear_error() {
    let port = coldstart_test_support::free_port();
    let none = temp_file("none.profile");
    let out = coldstart_test_support::output_within(
        Command::new(TOOL)
            .args(["profile", "--out"])
            .arg(&*none)
            .args([
                "--url",
                &format!("http://127.0.0.1:{port}/"),
                "--",
                "python3",
                "-m",
                "http.server",
            ])
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1"]),
        WITHIN,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("python3 answered but wrote no profile"),
        "{stderr}"
    );
    assert!(!none.exists());
}

/// `profile --out out` of a Python server that answers one request, for `path`, and
/// ends: the tool's exit code and stderr.
fn profile_a_one_shot_server(out: &std::path::Path, path: &str) -> (Option<i32>, String) {
    profile_python(out, path, |port| {
        format!(
            "import http.server as h; h.HTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler).handle_request()"
        )
    })
}

/// `profile --out out --url http://127.0.0.1:PORT<path> -- python3 -c <program(PORT)>`:
/// the tool's exit code and stderr.
fn profile_python(
    out: &std::path::Path,
    path: &str,
    program: impl FnOnce(u16) -> String,
) -> (Option<i32>, String) {
    profile_python_with(&[], out, path, program)
}

/// [`profile_python`] with `options` before `--out`.
fn profile_python_with(
    options: &[&str],
    out: &std::path::Path,
    path: &str,
    program: impl FnOnce(u16) -> String,
) -> (Option<i32>, String) {
    let port = coldstart_test_support::free_port();
    let run = coldstart_test_support::output_within(
        Command::new(TOOL)
            .arg("profile")
            .args(options)
            .arg("--out")
            .arg(out)
            .args(["--url", &format!("http://127.0.0.1:{port}{path}"), "--"])
            .args(["python3", "-c", &program(port)]),
        WITHIN,
    );
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    (run.status.code(), stderr)
}

/// `--wait` sets how long the program has after its answer to write the profile (its
/// deferred inits run first): a program that writes it a second after answering
/// fails the recording under `--wait 300ms`, naming the wait and the option, and is
/// recorded under `--wait 30s`. The wait was 10 s, whatever the deferred inits took.
#[test]
fn wait_sets_how_long_the_profile_may_take() {
    // Answers, then writes a profile a second later (beside, then renamed, as
    // coldstart does) and serves on until stopped.
    let late = |port: u16| {
        [
            "import http.server as h, os, threading, time",
            "def write():",
            "    time.sleep(1)",
            "    out = os.environ['COLDSTART_PROFILE_OUT']",
            "    open(out + '.tmp', 'w').write('coldstart-profile 1\\nneeded 5 static late::CONFIG\\n')",
            "    os.rename(out + '.tmp', out)",
            "class H(h.BaseHTTPRequestHandler):",
            "    def do_GET(self):",
            "        self.send_response(200); self.send_header('content-length', '0'); self.end_headers()",
            "        threading.Thread(target=write, daemon=True).start()",
            &format!("h.HTTPServer(('127.0.0.1', {port}), H).serve_forever()"),
        ]
        .join("\n")
    };
    let out = temp_file("late.profile");
    let run = |wait: &str| profile_python_with(&["--wait", wait], &out, "/", late);
    let (code, stderr) = run("300ms");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("wrote no profile within 300ms of its answer"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--wait gives slow deferred inits longer"),
        "{stderr}"
    );
    assert!(!out.exists());
    let (code, stderr) = run("30s");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        std::fs::read_to_string(&*out)
            .unwrap()
            .contains("late::CONFIG")
    );
}

/// A program that ends after its answer without a profile is said to have ended, as
/// soon as it has; the wait went on for the whole timeout and blamed the build.
#[test]
fn a_program_that_ends_after_its_answer_is_said_to_have_ended() {
    let none = temp_file("ended.profile");
    said_to_have_ended(profile_a_one_shot_server(&none, "/"), &none);
}

/// Exit code 1, the program said to have ended without a profile, and none written.
fn said_to_have_ended((code, stderr): (Option<i32>, String), out: &std::path::Path) {
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr
            .contains("python3 ended (exit status: 0) after its answer without writing a profile"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// A program that ends the moment its answer is sent (before its RSS could be read,
/// which `profile` does not need) is said to have ended without a profile too: it was
/// said to be no program `compare` measures.
#[test]
fn a_program_that_ends_as_it_answers_is_said_to_have_ended() {
    let none = temp_file("ended-at-once.profile");
    let ran = profile_python(&none, "/", |port| {
        format!(
            "import os, socket\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('127.0.0.1', {port})); s.listen(1)\n\
             c, _ = s.accept(); c.recv(4096)\n\
             c.sendall(b'HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\nok')\n\
             os._exit(0)\n"
        )
    });
    said_to_have_ended(ran, &none);
}

/// A program that answers other than 200 and then ends is said to have answered so,
/// with its stderr: it was said to have exited after its answer, the answer unsaid.
#[test]
fn an_answer_other_than_200_is_said_even_when_the_program_then_ends() {
    let (code, stderr) = profile_a_one_shot_server(&temp_file("not-found.profile"), "/missing");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("python3 answered \"HTTP/1.0 404"),
        "{stderr}"
    );
    // And what it takes.
    assert!(
        stderr.contains(", not 200 (give --url a path it answers with 200)"),
        "{stderr}"
    );
    assert!(stderr.contains("GET /missing"), "its stderr: {stderr}");
}

/// A profile the program writes that is not valid (another version's, say) is said as
/// such, at once: the wait took only a valid one for written, ran its whole 10 s, and
/// then said that no profile was written.
#[test]
fn a_profile_that_does_not_parse_is_said_to_be_invalid() {
    let port = coldstart_test_support::free_port();
    let out = temp_file("invalid.profile");
    // Answers, writes what is no profile where it is asked to, and serves on.
    let serve = [
        "import http.server as h, os",
        "class H(h.BaseHTTPRequestHandler):",
        "    def do_GET(self):",
        "        self.send_response(200); self.send_header('content-length', '0'); self.end_headers()",
        "        open(os.environ['COLDSTART_PROFILE_OUT'], 'w').write('garbage')",
        &format!("h.HTTPServer(('127.0.0.1', {port}), H).serve_forever()"),
    ]
    .join("\n");
    let run = coldstart_test_support::output_within(
        Command::new(TOOL)
            .args(["profile", "--out"])
            .arg(&*out)
            .args(["--url", &format!("http://127.0.0.1:{port}/"), "--"])
            .args(["python3", "-c", &serve]),
        std::time::Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the profile python3 wrote is not valid"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// A `COLDSTART_PROFILE` that cannot be read leaves the program on the profile built
/// into it, not on the default order.
#[test]
fn an_unreadable_override_falls_back_to_the_embedded_profile() {
    let server = example("http-server");
    let missing = temp_file("missing.profile");
    let garbled = temp_file("garbled.profile");
    std::fs::write(&garbled, "coldstart-profile 1\nsoon 1 fn x\n").unwrap();
    let embedded = planned_order(&server, None);
    assert!(
        embedded.1.contains("http_server::CLIENT_POOL"),
        "the embedded profile defers the pool: {embedded:?}"
    );
    assert_eq!(planned_order(&server, Some(&missing)), embedded);
    assert_eq!(planned_order(&server, Some(&garbled)), embedded);
}

//! A JSON echo function on `#[coldstart::main]`: it answers
//! `{"greeting": ..., "echo": <the event>}`.
//!
//! An event with an `"error"` field makes the handler return that error, one with a
//! `"panic"` field makes it panic: both are reported to Lambda for that invocation
//! (and counted and traced), and the next invocation is served as usual. One with a
//! `"sleep_ms"` number makes it wait that long first: past the function's timeout,
//! the invocation is recorded as timed out shortly before its deadline. One with a
//! `"status_code"` number answers with it as `statusCode`, the status an HTTP
//! trigger (API Gateway, a function URL) answers its caller with.
//! `HELLO_GREETING` sets the greeting; set but empty, or not UTF-8, the function
//! cannot start, and the failure is reported to the Runtime API's `/runtime/init/error`
//! (`!panic` makes the check panic, reported the same way).
//! `HELLO_MAX_KEYS` bounds the keys of an event (default 64, at most 1000000); it is
//! read by `main` before `run`, so a bad value is an init failure too.

use std::env::VarError;

use coldstart::lambda::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// The greeting every answer carries, or why `HELLO_GREETING` gives none; every
/// invocation reads it, so the first one needs it. A greeting that is not UTF-8 is an
/// error for `check_greeting` to report: taken for unset, it was silently `hello`.
#[coldstart::init]
static GREETING: Result<String, String> = match std::env::var("HELLO_GREETING") {
    Ok(greeting) => Ok(greeting),
    Err(VarError::NotPresent) => Ok("hello".to_owned()),
    Err(VarError::NotUnicode(given)) => Err(format!(
        "HELLO_GREETING must be UTF-8, got `{}`; give the greeting in UTF-8 or unset it",
        given.to_string_lossy().escape_debug()
    )),
};

/// The most `HELLO_MAX_KEYS` may be. The bound is compared with the keys of one
/// event, and the largest event Lambda takes (6 MB, a synchronous invocation) holds
/// fewer than a million: the keys must differ, so all but about a hundred take seven
/// bytes or more (`"ab":0,`). A larger number bounds nothing, and is more likely a
/// slip than a choice.
const MAX_KEYS_BOUND: usize = 1_000_000;

/// Configuration is checked before the function serves: a bad one is an init error.
/// The greeting `!panic` makes the check panic, to show that a panicking init is
/// reported the same way.
#[coldstart::init(critical)]
fn check_greeting() -> Result<(), String> {
    let greeting = GREETING.as_ref().map_err(Clone::clone)?;
    if greeting.trim().is_empty() {
        return Err("HELLO_GREETING is set but empty; unset it or give a greeting".to_owned());
    }
    assert!(
        greeting != "!panic",
        "the greeting check panicked, as asked"
    );
    Ok(())
}

async fn echo(event: LambdaEvent<Value>, max_keys: usize) -> Result<Value, Error> {
    let payload = event.payload;
    let keys = payload.as_object().map_or(0, |o| o.len());
    if keys > max_keys {
        return Err(format!("the event has {keys} keys, at most {max_keys} are accepted").into());
    }
    if let Some(message) = payload.get("error") {
        return Err(format!("asked to fail: {message}").into());
    }
    if let Some(message) = payload.get("panic") {
        panic!("asked to panic: {message}");
    }
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    // `check_greeting` stops start-up on an error: no invocation sees one.
    let greeting = GREETING
        .as_deref()
        .map_err(|why| Error::from(why.as_str()))?;
    let mut answer = json!({ "greeting": greeting });
    if let Some(status) = payload.get("status_code").and_then(Value::as_u64) {
        answer["statusCode"] = status.into();
    }
    answer["echo"] = payload;
    Ok(answer)
}

#[coldstart::main]
async fn main() -> Result<(), Error> {
    // Code before `run` is init as Lambda sees it: if `main` fails here, coldstart
    // reports it to the Runtime API.
    // Blank is unset, as for coldstart's own settings; spaces around a number are
    // not part of it. 0 would fail every event with a key, so it is refused here.
    let max_keys = match std::env::var_os("HELLO_MAX_KEYS") {
        Some(v) if !v.to_string_lossy().trim().is_empty() => {
            let v = v.to_string_lossy();
            v.trim()
                .parse()
                .ok()
                .filter(|n| (1..=MAX_KEYS_BOUND).contains(n))
                .ok_or_else(|| {
                    format!(
                        "set HELLO_MAX_KEYS to a whole number from 1 to {MAX_KEYS_BOUND}, got `{v}`"
                    )
                })?
        }
        _ => 64,
    };
    coldstart::lambda::run(service_fn(move |event| echo(event, max_keys))).await
}

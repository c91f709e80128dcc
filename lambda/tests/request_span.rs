//! A program's own `tracing` subscriber sees the invocation's request id around what
//! its handler logs, as under `lambda_runtime::run`, whose `TracingLayer` opens a
//! `Lambda runtime invoke` span with `requestId` for each invocation; coldstart's
//! `run` left that layer out. A server in a thread stands in for the Runtime API,
//! answering one invocation (the real emulator is used by the example's tests). Its
//! own binary, without the test harness: the Lambda variables and the subscriber are
//! the process's, set before any thread.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::mpsc::channel;
use std::time::Duration;

use coldstart_lambda::{Error, LambdaEvent, service_fn};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Each event's spans, innermost first, as `name{field=value ...}`.
static SEEN: Mutex<Vec<Vec<String>>> = Mutex::new(Vec::new());

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

struct Capture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let spans = ctx.event_scope(event).into_iter().flatten().map(|span| {
            let fields = span.extensions().get::<Fields>().map(|f| f.0.clone());
            format!("{}{{{}}}", span.name(), fields.unwrap_or_default().trim())
        });
        SEEN.lock().unwrap().push(spans.collect());
    }
}

/// Answers `/next` once with the invocation `req-42`, takes its response, and holds
/// the next `/next` unanswered; says when the response arrived.
fn runtime_api() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (responded, response) = channel();
    std::thread::spawn(move || {
        let mut served = false;
        for stream in listener.incoming().map_while(Result::ok) {
            let responded = responded.clone();
            let first = !served;
            served = true;
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let mut given = !first;
                while let Some((request, _)) = coldstart_test_support::read_request(&mut reader) {
                    if request.starts_with("GET") && request.contains("/invocation/next") {
                        if given {
                            // The next invocation never comes.
                            std::thread::sleep(Duration::from_secs(3600));
                            return;
                        }
                        given = true;
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 60_000;
                        let event = b"{}";
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: req-42\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:eu-west-1:123456789012:function:span\r\nlambda-runtime-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            event.len()
                        );
                        writer.write_all(answer.as_bytes()).unwrap();
                        writer.write_all(event).unwrap();
                    } else {
                        writer
                            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                            .unwrap();
                        let _ = responded.send(request.trim().to_owned());
                    }
                }
            });
        }
    });
    (port, response)
}

fn main() {
    let (port, response) = runtime_api();
    let vars = [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", "span".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
    ];
    for (key, value) in vars {
        // SAFETY: the server's thread reads no variable; nothing else runs yet.
        unsafe { std::env::set_var(key, value) };
    }
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture)).unwrap();
    let handler = service_fn(|_: LambdaEvent<serde_json::Value>| async {
        tracing::info!("handling");
        Ok::<_, Error>(serde_json::Value::Null)
    });
    // The function runs on a thread of its own, until the process ends.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let _ = coldstart_lambda::run(handler).await;
        });
    });
    let posted = response.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        posted.starts_with("POST /2018-06-01/runtime/invocation/req-42/response"),
        "{posted}"
    );
    let seen = SEEN.lock().unwrap().clone();
    let handling: Vec<_> = seen.iter().filter(|spans| !spans.is_empty()).collect();
    assert!(
        handling.iter().any(|spans| {
            spans.iter().any(|s| {
                s.starts_with("Lambda runtime invoke{") && s.contains("requestId=\"req-42\"")
            })
        }),
        "no event inside a span with the request id: {seen:?}"
    );
    println!("request_span: the handler's event is inside `Lambda runtime invoke` with requestId");
}

/*!
An internal extension whose only job is to make Lambda deliver SIGTERM.

Measured against the emulator, registering adds about 0.5-1 ms to a function's init
(BENCHMARKS.md, "Lambda"), while the flush after every invocation leaves nothing
queued when it finishes in its budget (what it could not send waits for the next
invocation's, and is lost if the environment is shut down first). So by default
(`auto`) coldstart registers
only when something needs SIGTERM: the program registered shutdown hooks of its own
before calling `run`, or Pushgateway pushes are configured. `on` always registers,
`off` never does.

Lambda sends a function SIGTERM before it shuts the execution environment down only
when at least one extension is registered; without one the process is frozen and then
killed, and whatever it held is lost. Registering takes one request to the Extensions
API during init; after it the extension waits on `/extension/event/next` (a long
poll) for the rest of the process's life, on the program's runtime. With it, Lambda
gives the process up to 500 ms after SIGTERM, in which coldstart's shutdown hooks run
(the final span flush among them).

Where the decision is known before the program's own init code runs (`on`, or `auto`
with a Pushgateway set or a hook registered), registration is a task started then and
awaited just before the first `/next`: its round trip overlaps the part of the init
that awaits (an SDK client's set-up, say), or all of it where other workers run the
task; on the one-thread scheduler blocking init code runs before the task does.
*/

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use coldstart_bootstrap::plan::settings::OneLine;
use tokio::task::JoinHandle;

use crate::function::RuntimeApi;

/// The name the extension registers under.
pub const NAME: &str = "coldstart";

/// Registration answers in well under a millisecond on Lambda; a Runtime API that
/// does not answer within this must not hold the function's init any longer.
const REGISTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

static REGISTERING: Mutex<Option<JoinHandle<Result<(), String>>>> = Mutex::new(None);

/// Whether a registration was started in this process.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Whether [`start`] has begun a registration in this process (a failed one lowers
/// the hooks' cap when it is said).
pub(crate) fn started() -> bool {
    STARTED.load(Ordering::Acquire)
}

/// Starts registering the extension on the current runtime, once; [`registered`]
/// waits for it.
///
/// # Panics
///
/// Outside a tokio runtime.
pub(crate) fn start(api: &RuntimeApi) {
    let mut slot = REGISTERING.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_some() {
        return;
    }
    STARTED.store(true, Ordering::Release);
    let api = api.clone();
    // Not cut off: Lambda may have taken a slow registration, and then waits for the
    // extension's `/event/next` until the init times out. [`registered`] stops
    // waiting instead.
    *slot = Some(coldstart_runtime::task::spawn(async move {
        register(&api).await
    }));
}

/// Waits for the registration [`start`] began, if any; a failure is printed once and
/// the function runs on without coldstart's extension.
pub(crate) async fn registered() {
    registered_saying(say).await;
}

fn say(line: String) {
    coldstart_bootstrap::say!("coldstart: {line}");
}

/// Follows the registration [`start`] began, if nobody waits for it ([`registered`]:
/// a program serving through its own `Runtime` with the invocation layer), on a task
/// of its own: a failure is said when it comes. Does nothing outside a runtime.
pub(crate) fn follow() {
    follow_saying(say);
}

/// [`follow`], saying what there is to say with `say`.
fn follow_saying(say: impl Fn(String) + Send + 'static) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let handle = REGISTERING.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(handle) = handle {
        coldstart_runtime::task::spawn(async move { say_failure(handle.await, &say) });
    }
}

/// [`registered`], saying what there is to say with `say`. A registration still
/// unanswered after [`REGISTER_TIMEOUT`] goes on while the function serves; if it then
/// fails (Lambda refuses registrations once the function is ready), that is said too.
async fn registered_saying(say: impl Fn(String) + Send + 'static) {
    let handle = REGISTERING.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(mut handle) = handle else { return };
    match tokio::time::timeout(REGISTER_TIMEOUT, &mut handle).await {
        Ok(joined) => say_failure(joined, &say),
        Err(_) => {
            say(format!(
                "the internal extension has had no answer within {REGISTER_TIMEOUT:?}; it goes on registering while the function serves"
            ));
            coldstart_runtime::task::spawn(async move { say_failure(handle.await, &say) });
        }
    }
}

/// Says a failed registration; the shutdown hooks then have what Lambda gives where
/// only another extension is registered ([`EXTERNAL_SHUTDOWN_BUDGET`]), as SIGTERM
/// comes only then.
///
/// [`EXTERNAL_SHUTDOWN_BUDGET`]: crate::EXTERNAL_SHUTDOWN_BUDGET
fn say_failure(joined: Result<Result<(), String>, tokio::task::JoinError>, say: &impl Fn(String)) {
    if let Err(e) = joined.map_err(|e| e.to_string()).and_then(|r| r) {
        let cap = crate::EXTERNAL_SHUTDOWN_BUDGET;
        coldstart_runtime::lifecycle::cap_hook_deadlines(cap);
        say(format!(
            "the internal extension could not register ({e}); Lambda sends SIGTERM only where another extension is registered, so the shutdown hooks may not run, and have {} ms where they do",
            cap.as_millis()
        ));
    }
}

/// Registers for no events, then waits on the event stream in the background. Plain
/// HTTP/1.1 on a socket of its own: two requests need no client (an HTTP client
/// measured the same; the round trip is the cost, BENCHMARKS.md "Lambda").
async fn register(api: &RuntimeApi) -> Result<(), String> {
    let body = r#"{"events":[]}"#;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nLambda-Extension-Name: {NAME}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        api.path("/2020-01-01/extension/register"),
        body.len(),
        host = api.authority,
    );
    let head = exchange(&api.authority, &request)
        .await
        .map_err(|e| api.failed(e))?;
    if !matches!(
        crate::init_error::status_code(head.as_bytes()),
        Some(200..=299)
    ) {
        return Err(format!(
            "the Extensions API answered `{}`",
            head.lines().next().unwrap_or_default()
        ));
    }
    let id = header(&head, "lambda-extension-identifier")
        .ok_or("the Extensions API gave no Lambda-Extension-Identifier")?
        .to_owned();
    let next = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nLambda-Extension-Identifier: {id}\r\n\r\n",
        api.path("/2020-01-01/extension/event/next"),
        host = api.authority,
    );
    let authority = api.authority.clone();
    coldstart_runtime::task::spawn(async move {
        wait_for_next_event(&authority, &next, |kind, line| {
            coldstart_exporters::problem::report(kind, || line);
        })
        .await;
    });
    Ok(())
}

/// Asks for the extension's next event until it is answered. Lambda counts the
/// extension as initialised, and an invocation as done, only while it waits there: an
/// ask that failed (a connection dropped, an error answer) would keep the function's
/// init or invocations waiting, unsaid. Each failure is said and the ask made again,
/// after 50 ms doubling to 1 s; a refusal (4xx: the identifier is not Lambda's) is
/// said and not asked again. With no events registered the answer only comes at
/// shutdown, with SIGTERM.
/// `say` takes each line with its kind for the rate limit: a refusal has its own, so
/// that it is said even just after a failure was.
async fn wait_for_next_event(authority: &str, next: &str, say: impl Fn(&'static str, String)) {
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        let why = match exchange(authority, next).await {
            Ok(head) => {
                let status = OneLine(head.lines().next().unwrap_or_default());
                match crate::init_error::status_code(head.as_bytes()) {
                    Some(200..=299) => return,
                    Some(400..=499) => {
                        say(
                            "lambda-extension-refused",
                            format!(
                                "the Extensions API refused the internal extension's wait for events (`{status}`); Lambda may hold the function's invocations until they time out"
                            ),
                        );
                        return;
                    }
                    Some(_) => format!("it answered `{status}`"),
                    None => "the connection closed without an answer".to_owned(),
                }
            }
            Err(e) => e.to_string(),
        };
        say(
            "lambda-extension-next",
            format!(
                "the internal extension's wait for events failed ({why}); asking again in {pause:?}"
            ),
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(1));
    }
}

/// The longest response head [`exchange`] reads.
const MAX_HEAD: usize = 16 << 10;

/// Sends `request` and returns the response head (status line and headers).
async fn exchange(authority: &str, request: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        // A head this long is not the Extensions API's: stop rather than grow.
        if head.len() > MAX_HEAD {
            return Err(std::io::Error::other("response head longer than 16 KiB"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// A header's value in a response head, by case-insensitive name.
pub(crate) fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::{
        MAX_HEAD, REGISTER_TIMEOUT, exchange, follow_saying, header, registered, registered_saying,
        start, wait_for_next_event,
    };
    use crate::function::RuntimeApi;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The registration slot is the process's: tests that fill it take turns.
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// A registration answered after the wait: the function goes on serving, and the
    /// registration still completes and asks for its next event, which Lambda waits
    /// for (cut off, it never did, and Lambda would wait until the init timed out).
    #[tokio::test]
    async fn a_slow_registration_goes_on_after_the_wait() {
        let _turn = TURN.lock().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let (asked, mut requests) = tokio::sync::mpsc::unbounded_channel();
        // The registration is answered only once the wait has ended.
        let (waited, answer) = tokio::sync::oneshot::channel::<()>();
        let mut answer = Some(answer);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = vec![0u8; 1024];
                let n = stream.read(&mut request).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&request[..n])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = asked.send(line);
                if let Some(answer) = answer.take() {
                    let _ = answer.await;
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: id-1\r\nContent-Length: 0\r\n\r\n")
                    .await;
                // The event stream's request is held open, as Lambda holds it.
                std::mem::forget(stream);
            }
        });
        start(&RuntimeApi::parse(&authority).unwrap());
        // Bounded only so that a wait for the answer fails rather than hangs.
        tokio::time::timeout(REGISTER_TIMEOUT * 30, registered())
            .await
            .expect("the wait ends without the answer");
        waited.send(()).unwrap();
        let register = requests.recv().await.unwrap();
        assert!(
            register.starts_with("POST /2020-01-01/extension/register"),
            "{register}"
        );
        let next = tokio::time::timeout(REGISTER_TIMEOUT * 5, requests.recv())
            .await
            .expect("the registration went on to ask for its next event")
            .unwrap();
        assert!(
            next.starts_with("GET /2020-01-01/extension/event/next"),
            "{next}"
        );
    }

    /// An Extensions API that refuses the registration `after` it has read it; its
    /// address.
    async fn refusing(after: std::time::Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 1024];
            let _ = stream.read(&mut request).await;
            tokio::time::sleep(after).await;
            let _ = stream
                .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                .await;
        });
        authority
    }

    /// A registration refused after the wait (Lambda closes registration once the
    /// function is ready) is said when the refusal comes: before, nothing was, and
    /// the function went on as if SIGTERM would come.
    #[tokio::test]
    async fn a_late_refusal_is_said_when_it_comes() {
        let _turn = TURN.lock().await;
        let authority = refusing(REGISTER_TIMEOUT * 2).await;
        let (said, mut lines) = tokio::sync::mpsc::unbounded_channel();
        start(&RuntimeApi::parse(&authority).unwrap());
        registered_saying(move |line| {
            let _ = said.send(line);
        })
        .await;
        let first = lines.recv().await.unwrap();
        assert!(first.contains("it goes on registering"), "{first}");
        let late = tokio::time::timeout(REGISTER_TIMEOUT * 5, lines.recv())
            .await
            .expect("the refusal is said")
            .unwrap();
        assert_eq!(
            late,
            "the internal extension could not register (the Extensions API answered `HTTP/1.1 403 Forbidden`); Lambda sends SIGTERM only where another extension is registered, so the shutdown hooks may not run, and have 250 ms where they do"
        );
        // As where no extension of coldstart's was asked for.
        assert_eq!(
            coldstart_runtime::lifecycle::hook_cap(),
            crate::EXTERNAL_SHUTDOWN_BUDGET
        );
    }

    /// A registration nobody waits for (the program serves through its own `Runtime`
    /// with the invocation layer, which follows it) is said when it fails: before,
    /// its refusal was dropped unsaid.
    #[tokio::test]
    async fn a_registration_nobody_waits_for_is_followed() {
        let _turn = TURN.lock().await;
        let authority = refusing(std::time::Duration::ZERO).await;
        let (said, mut lines) = tokio::sync::mpsc::unbounded_channel();
        start(&RuntimeApi::parse(&authority).unwrap());
        follow_saying(move |line| {
            let _ = said.send(line);
        });
        let line = tokio::time::timeout(REGISTER_TIMEOUT * 30, lines.recv())
            .await
            .expect("the refusal is said")
            .unwrap();
        assert!(
            line.starts_with("the internal extension could not register (the Extensions API answered `HTTP/1.1 403 Forbidden`)"),
            "{line}"
        );
    }

    /// A registration that cannot reach the API names the address it tried and the
    /// variable that gave it (a wrong emulator address is the usual cause).
    #[tokio::test]
    async fn an_unreachable_api_is_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = super::register(&RuntimeApi::parse(&format!("127.0.0.1:{port}")).unwrap())
            .await
            .unwrap_err();
        assert!(
            err.starts_with(&format!("AWS_LAMBDA_RUNTIME_API=127.0.0.1:{port}: ")),
            "{err}"
        );
    }

    /// A wait for events that fails (a connection closed unanswered, a 500) is said
    /// and asked again, until it is held open; a refusal is said and not asked again.
    #[tokio::test]
    async fn a_failed_wait_for_events_is_said_and_asked_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let api = tokio::spawn(async move {
            let answers: [&[u8]; 3] = [
                b"",
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nLambda-Extension-Event-Identifier: e\r\nContent-Length: 2\r\n\r\n{}",
            ];
            for answer in answers {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 256];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(answer).await;
            }
            listener
        });
        let said = std::sync::Mutex::new(Vec::new());
        let next = "GET /2020-01-01/extension/event/next HTTP/1.1\r\n\r\n";
        tokio::time::timeout(
            REGISTER_TIMEOUT * 5,
            wait_for_next_event(&authority, next, |_, line| said.lock().unwrap().push(line)),
        )
        .await
        .expect("the third ask is answered");
        let said = said.into_inner().unwrap();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].contains("closed without an answer"), "{said:?}");
        assert!(
            said[1].contains("`HTTP/1.1 500 Internal Server Error`"),
            "{said:?}"
        );
        let listener = api.await.unwrap();
        let refuser = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 256];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                .await;
        });
        let refused = std::sync::Mutex::new(Vec::new());
        wait_for_next_event(&authority, next, |kind, line| {
            refused.lock().unwrap().push((kind, line))
        })
        .await;
        refuser.await.unwrap();
        let refused = refused.into_inner().unwrap();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "lambda-extension-refused");
        assert!(refused[0].1.contains("refused"), "{refused:?}");
    }

    /// Regression: a peer that never ends its head used to grow the buffer forever.
    #[tokio::test]
    async fn an_endless_head_is_an_error_not_unbounded_memory() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let peer = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 256];
            let _ = stream.read(&mut request).await;
            let line = [b'x'; 1024];
            // Four times the limit, then hang up; the reader must stop before the end.
            for _ in 0..4 * MAX_HEAD / line.len() {
                if stream.write_all(&line).await.is_err() {
                    return;
                }
            }
        });
        let result = exchange(&authority, "GET / HTTP/1.1\r\n\r\n").await;
        let err = result.expect_err("an endless head is refused");
        assert!(err.to_string().contains("16 KiB"), "{err}");
        peer.abort();
    }

    #[test]
    fn headers_by_name() {
        let head =
            "HTTP/1.1 200 OK\r\nlambda-extension-identifier: 4bd5\r\ncontent-length: 3\r\n\r\n";
        assert_eq!(header(head, "Lambda-Extension-Identifier"), Some("4bd5"));
        assert_eq!(header(head, "missing"), None);
    }
}

/*!
The `/metrics` listener, started after the first response.

`GET /metrics` renders everything (see [`super::render`]), `HEAD /metrics` its head
alone; other paths are 404 and other methods 405. An address that cannot be bound (port taken, no permission) is
reported once and leaves the service running without a listener.

With TLS configured (the `tls` feature), each connection does its handshake on its
own task, within [`HANDSHAKE_TIMEOUT`]; a client the server refuses (no certificate,
or one from another CA, when a client CA is set) is reported once a minute at most.

Memory stays bounded whatever clients do, and idle clients cannot keep a scraper out:
- at most [`LIMITS`]`.connections` are served at once. A connection accepted when all
  places are taken takes the place of the one idle longest (opened, or last wrote an
  answer, earliest, and not making or writing one now), which is closed: at once if it
  never sent a request, once the answer it may still be writing is out otherwise (within
  [`LAST_ANSWER`]; the new connection waits meanwhile, the rest in the kernel's
  backlog). When every connection is making an answer, it waits for a place. Either
  is said once a minute at most.
- a connection that sends no complete request head within [`LIMITS`]`.header_read`
  (idle between requests included) is closed, and none lives longer than
  [`LIMITS`]`.lifetime` after its TLS handshake, where there is one (a client that sends a request and never reads the answer
  holds its place no longer than that and [`LAST_ANSWER`], 10 s, to finish the
  answer being written).
*/

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::ServerTls;
use crate::problem;

/// How long a TLS client may take to finish its handshake.
#[cfg(feature = "tls")]
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(feature = "tls")]
type Tls = tokio_rustls::TlsAcceptor;
/// Without the `tls` feature there is no TLS acceptor.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
enum Tls {}

type Acceptor = Option<Tls>;

/// What makes the text of `/metrics` ([`super::scraped`]; a test gives its own).
type Text = fn() -> Pin<Box<dyn Future<Output = Bytes> + Send>>;

/// How many connections are served at once, how long one may take to send a request
/// head, how long one may live and then finish the answer it writes; and the text of
/// `/metrics` (a test gives its own).
#[derive(Clone, Copy)]
struct Limits {
    connections: usize,
    header_read: Duration,
    lifetime: Duration,
    last_answer: Duration,
    text: Text,
}

/// A scraper keeps one connection; 64 leave room for several, and a scrape every 15 s
/// keeps its connection within the 30 s. A scraper whose connection is closed after
/// 5 minutes opens another.
const LIMITS: Limits = Limits {
    connections: 64,
    header_read: Duration::from_secs(30),
    lifetime: Duration::from_secs(300),
    last_answer: LAST_ANSWER,
    text: || Box::pin(super::scraped()),
};

/// Binds `addr` and serves `/metrics` on a task, over TLS when `tls` is given; the
/// address bound, or `None` where it could not start (said).
pub(crate) async fn start(addr: SocketAddr, tls: Option<&ServerTls>) -> Option<SocketAddr> {
    let acceptor: Acceptor = match tls {
        None => None,
        #[cfg(feature = "tls")]
        Some(files) => match crate::tls::server_config(files) {
            Ok(config) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
            Err(e) => {
                problem::report("metrics-tls", || {
                    format!("metrics: {e}; /metrics is not served")
                });
                return None;
            }
        },
        // The settings refuse TLS files in a build without the `tls` feature.
        #[cfg(not(feature = "tls"))]
        Some(_) => return None,
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            problem::report("metrics-listen", || {
                format!(
                    "metrics: cannot listen on {addr} ({e}); set COLDSTART_METRICS_ADDR to a free address, or `off`"
                )
            });
            return None;
        }
    };
    let bound = listener.local_addr().ok();
    coldstart_runtime::task::spawn(serve(listener, acceptor, LIMITS));
    bound
}

async fn serve(listener: TcpListener, acceptor: Acceptor, limits: Limits) {
    let places = Arc::new(Places::new(limits.connections));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, usually: wait instead of spinning.
                problem::report("metrics-accept", || format!("metrics: accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Accepted first, so that a wait is said only when a client waits; the rest
        // wait in the backlog meanwhile.
        let place = places.take(limits).await;
        let acceptor = acceptor.clone();
        coldstart_runtime::task::spawn(async move {
            let Some(acceptor) = acceptor else {
                return connection(stream, limits, place).await;
            };
            #[cfg(feature = "tls")]
            let slot = place.slot.clone();
            #[cfg(feature = "tls")]
            tokio::select! {
                shaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match shaken {
                    Ok(Ok(stream)) => connection(stream, limits, place).await,
                    Ok(Err(e)) => problem::report("metrics-handshake", || {
                        format!("metrics: a TLS client was refused: {e}")
                    }),
                    Err(_) => problem::report("metrics-handshake", || {
                        "metrics: a TLS client did not finish its handshake in time".into()
                    }),
                },
                // Its place is given to a new connection.
                () = slot.close.notified() => {}
            }
            #[cfg(not(feature = "tls"))]
            match acceptor {}
        });
    }
}

/// The places among the connections served at once, and who holds them.
struct Places {
    free: Arc<Semaphore>,
    held: Mutex<Vec<Arc<Slot>>>,
    /// Told when a connection ends an answer, for a new connection waiting while every
    /// one was answering.
    went_idle: Notify,
}

/// What the listener knows of one connection.
struct Slot {
    /// Since when it has been idle (opened, or its last answer written); `None` while
    /// it makes or writes an answer.
    idle_since: Mutex<Option<Instant>>,
    answered: AtomicBool,
    /// Set once it is told to close, so that it is chosen once.
    closing: AtomicBool,
    close: Notify,
}

/// A place held by a connection, given back when the connection's task ends.
struct Place {
    places: Arc<Places>,
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
}

impl Places {
    fn new(connections: usize) -> Places {
        Places {
            free: Arc::new(Semaphore::new(connections)),
            held: Mutex::new(Vec::with_capacity(connections)),
            went_idle: Notify::new(),
        }
    }

    /// A place for a connection just accepted. When all are taken, the connection idle
    /// longest is told to close, or, every one answering, one is waited for; either is
    /// said, since a scraper that cannot get through would otherwise see only its
    /// scrapes time out.
    async fn take(self: &Arc<Places>, limits: Limits) -> Place {
        loop {
            if let Ok(permit) = self.free.clone().try_acquire_owned() {
                return self.hold(permit);
            }
            let closed = self.close_idle_longest();
            // Each way said apart: `closing` a place, or `waiting` for one.
            let how = if closed { "closing" } else { "waiting" };
            problem::report_about("metrics-connections", how, || {
                let what = if closed {
                    "the one idle longest is closed for each new one"
                } else {
                    "every one is answering, and new ones wait until one closes"
                };
                format!(
                    "metrics: {} connections are open, the most served at once; {what} (a connection closes after {} s without a request, {} s after it opened, or finished its TLS handshake, at the latest)",
                    limits.connections,
                    limits.header_read.as_secs(),
                    limits.lifetime.as_secs()
                )
            });
            tokio::select! {
                // Never closed, so acquiring only waits.
                Ok(permit) = self.free.clone().acquire_owned() => return self.hold(permit),
                () = self.went_idle.notified(), if !closed => {}
            }
        }
    }

    fn hold(self: &Arc<Places>, permit: OwnedSemaphorePermit) -> Place {
        let slot = Arc::new(Slot {
            idle_since: Mutex::new(Some(Instant::now())),
            answered: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        lock(&self.held).push(slot.clone());
        Place {
            places: self.clone(),
            slot,
            _permit: permit,
        }
    }

    /// Tells the connection idle longest, not already told, to close; whether there
    /// was one.
    fn close_idle_longest(&self) -> bool {
        let held = lock(&self.held);
        let longest = held
            .iter()
            .filter(|slot| !slot.closing.load(Ordering::Relaxed))
            .filter_map(|slot| Some(((*lock(&slot.idle_since))?, slot)))
            .min_by_key(|(since, _)| *since);
        let Some((_, slot)) = longest else {
            return false;
        };
        slot.closing.store(true, Ordering::Relaxed);
        // Kept until the connection's task looks, if it is not waiting yet.
        slot.close.notify_one();
        true
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        lock(&self.places.held).retain(|slot| !Arc::ptr_eq(slot, &self.slot));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn connection<S>(stream: S, limits: Limits, place: Place)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (slot, places) = (place.slot.clone(), place.places.clone());
    let answer = service_fn(move |req: Request<Incoming>| {
        let (slot, places) = (slot.clone(), places.clone());
        async move {
            *lock(&slot.idle_since) = None;
            let response = answer_to(req.method(), req.uri().path(), limits.text).await;
            slot.answered.store(true, Ordering::Relaxed);
            // Idle once hyper has written the answer and let its body go, not when it
            // is made: a client slowly reading a large one is not idle.
            let written = IdleWhenWritten { slot, places };
            Ok::<_, Infallible>(response.map(|rest| Answer {
                rest,
                _written: written,
            }))
        }
    });
    let served = http1::Builder::new()
        // hyper keeps no time of its own: without a timer the timeout is not applied.
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read)
        // A scrape's request head is well under hyper's smallest buffer; its default
        // would let each connection's head grow to some 400 KiB before it is refused.
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(stream), answer);
    let mut served = std::pin::pin!(served);
    tokio::select! {
        // The connection first: a request head already in is answered before the
        // connection can be given away.
        biased;
        _ = served.as_mut() => return,
        () = tokio::time::sleep(limits.lifetime) => {}
        () = place.slot.close.notified() => {
            // Given to a new connection. One that never sent a request, and is not
            // making its first answer now, is closed at once (hyper would wait for
            // its first request).
            let first_under_way = lock(&place.slot.idle_since).is_none();
            if !place.slot.answered.load(Ordering::Relaxed) && !first_under_way {
                return;
            }
        }
    }
    // Closing now: never chosen to give its place up again.
    place.slot.closing.store(true, Ordering::Relaxed);
    // At the end of its life, or given to a new connection, the connection closes once
    // the answer being written is out (cut mid-body, a scrape fails as an unexpected
    // end of its body), and for a client that never reads it, after a last grace.
    served.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.last_answer, served).await;
}

/// An answer's body, given to hyper in pieces of at most [`PIECE`]: hyper takes the
/// next piece only as it writes the ones before (it holds a few at most), so the body
/// is let go, and its connection marked idle, once the answer is about written, or the
/// connection is gone.
struct Answer {
    rest: Bytes,
    /// Held for its drop.
    _written: IdleWhenWritten,
}

/// The largest piece of an answer given to hyper at once.
const PIECE: usize = 64 << 10;

struct IdleWhenWritten {
    slot: Arc<Slot>,
    places: Arc<Places>,
}

impl Drop for IdleWhenWritten {
    fn drop(&mut self) {
        *lock(&self.slot.idle_since) = Some(Instant::now());
        self.places.went_idle.notify_one();
    }
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let rest = &mut self.rest;
        std::task::Poll::Ready((!rest.is_empty()).then(|| {
            let piece = rest.split_to(rest.len().min(PIECE));
            Ok(hyper::body::Frame::data(piece))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// The longest request head read (hyper's smallest read buffer): longer is refused.
const MAX_HEAD: usize = 8 << 10;

/// How long a connection at the end of its life has to finish the answer it writes.
const LAST_ANSWER: Duration = Duration::from_secs(10);

/// The response to `method path`: `/metrics` answered with `text` ([`LIMITS`]: a
/// large registry rendered off the runtime's threads, once for the scrapes that wait
/// for it, [`super::scraped`]).
async fn answer_to(method: &Method, path: &str, text: Text) -> Response<Bytes> {
    match refusal(method, path) {
        Some(refused) => refused,
        None => response(StatusCode::OK, super::CONTENT_TYPE, text().await),
    }
}

/// The answer to anything but `GET` or `HEAD` of `/metrics`; `None` for those.
fn refusal(method: &Method, path: &str) -> Option<Response<Bytes>> {
    let (status, body) = match (method, path) {
        (&Method::GET | &Method::HEAD, "/metrics") => return None,
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, "use GET\n"),
        _ => (StatusCode::NOT_FOUND, "metrics are at /metrics\n"),
    };
    Some(response(status, "text/plain; charset=utf-8", body))
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Bytes> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // A 405 must say which methods are allowed (RFC 9110, 15.5.6).
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const HOUR: Duration = Duration::from_secs(3600);

    /// Serves on a free port with these limits and the real ones' text and last
    /// grace; the address.
    async fn listening(
        connections: usize,
        header_read: Duration,
        lifetime: Duration,
    ) -> SocketAddr {
        serving(Limits {
            connections,
            header_read,
            lifetime,
            ..LIMITS
        })
        .await
    }

    /// Serves on a free port with `limits`; the address.
    async fn serving(limits: Limits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        coldstart_runtime::task::spawn(serve(listener, None, limits));
        addr
    }

    /// A scrape asked for a moment after the connections already open took their
    /// places.
    async fn scrape_later(addr: SocketAddr) -> TcpStream {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut scraper = TcpStream::connect(addr).await.unwrap();
        scraper
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        scraper
    }

    /// The whole answer on `scraper`, which must come within 10 s.
    async fn answered(scraper: &mut TcpStream, why: &str) -> String {
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), scraper.read_to_string(&mut answer))
            .await
            .expect(why)
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        answer
    }

    /// The tests that fill the places take turns: each counts the reports it caused.
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn full() -> u64 {
        problem::reports("metrics-connections")
    }

    /// How often a connection waited for a place, every one answering.
    fn waited() -> u64 {
        problem::reports_about("metrics-connections", "waiting")
    }

    /// Whether the server closed `client` within 10 s; what it had been sent.
    async fn closed(client: &mut TcpStream) -> Option<Vec<u8>> {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest));
        read.await.ok()?.ok().map(|_| rest)
    }

    /// Whether `client` is still open a moment later, having been sent nothing more.
    async fn still_open(client: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(300), client.read(&mut byte));
        read.await.is_err()
    }

    #[tokio::test]
    async fn a_new_connection_takes_the_place_of_the_one_idle_longest() {
        let _turn = TURN.lock().await;
        let before = full();
        let addr = listening(2, HOUR, HOUR).await;
        // Both places taken by clients that send nothing, the first one earlier.
        let mut oldest = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut newer = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(full(), before, "every place taken, but no one waits yet");

        let mut scraper = scrape_later(addr).await;
        answered(&mut scraper, "served in the place of the oldest").await;
        assert_eq!(full(), before + 1, "that all places were taken is said");
        assert_eq!(closed(&mut oldest).await, Some(vec![]), "the oldest closed");
        assert!(still_open(&mut newer).await, "the newer one kept its place");
    }

    #[tokio::test]
    async fn an_answered_client_gives_its_place_up_once_idle() {
        let _turn = TURN.lock().await;
        let addr = listening(1, HOUR, HOUR).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        idle.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        // Kept alive and quiet from here on, holding the only place.
        let mut scraper = scrape_later(addr).await;
        answered(&mut scraper, "served in the place of the idle client").await;
        assert!(closed(&mut idle).await.is_some(), "the idle client closed");
    }

    #[tokio::test]
    async fn a_client_that_never_reads_its_answers_is_closed_at_the_end_of_its_life() {
        let _turn = TURN.lock().await;
        let addr = listening(1, HOUR, Duration::from_millis(300)).await;
        // Keeps its connection open with requests whose answers it does not read.
        let mut hog = TcpStream::connect(addr).await.unwrap();
        for _ in 0..3 {
            hog.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answers = closed(&mut hog)
            .await
            .expect("closed at the end of its life");
        assert!(answers.starts_with(b"HTTP/1.1 200"));
    }

    /// The real limits, which the tests below replace with small ones.
    #[test]
    fn the_limits_are_64_connections_30_s_for_a_head_5_minutes_and_10_s_more() {
        assert_eq!(LIMITS.connections, 64);
        assert_eq!(LIMITS.header_read, Duration::from_secs(30));
        assert_eq!(LIMITS.lifetime, Duration::from_secs(300));
        assert_eq!(LIMITS.last_answer, Duration::from_secs(10));
    }

    /// The text of the answer below: far more than the sockets between the two ends
    /// hold, so that a client that never reads keeps it unfinished.
    const LARGE: usize = 64 << 20;

    fn large() -> Pin<Box<dyn Future<Output = Bytes> + Send>> {
        Box::pin(async { Bytes::from(vec![b'#'; LARGE]) })
    }

    /// One place, [`large`] answers and a grace of 300 ms after `lifetime`; and a client
    /// that has asked for `/metrics` and never reads: the address and the client.
    async fn hogged(lifetime: Duration) -> (SocketAddr, TcpStream) {
        let addr = serving(Limits {
            connections: 1,
            header_read: HOUR,
            lifetime,
            last_answer: Duration::from_millis(300),
            text: large,
        })
        .await;
        let mut hog = TcpStream::connect(addr).await.unwrap();
        hog.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        (addr, hog)
    }

    /// A client that asks for a large answer and never reads it holds its place no
    /// longer than its life and the last grace to finish the answer: the answer is
    /// then cut (and what the kernel held of it is all the client ever gets).
    #[tokio::test]
    async fn an_answer_never_read_is_cut_at_the_end_of_the_last_grace() {
        let _turn = TURN.lock().await;
        let (_, mut hog) = hogged(Duration::from_millis(200)).await;
        // Past the life and the grace, not reading meanwhile.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let got = closed(&mut hog).await.expect("closed after the grace");
        assert!(got.starts_with(b"HTTP/1.1 200"));
        assert!(
            got.len() < LARGE,
            "the whole answer came: {} bytes",
            got.len()
        );
    }

    /// A connection accepted while every place is making an answer waits (none is
    /// taken from a connection mid-answer), is said, and is served once a place is
    /// free: here when the one answering is cut at the end of its grace.
    #[tokio::test]
    async fn a_new_connection_waits_while_every_place_is_making_an_answer() {
        let _turn = TURN.lock().await;
        let before = waited();
        let (addr, hog) = hogged(Duration::from_millis(400)).await;
        let mut scraper = scrape_later(addr).await;
        assert!(
            still_open(&mut scraper).await,
            "answered while the only place was making an answer"
        );
        // The hog's answer is made but not written (it never reads): it is answering,
        // not idle, so the new connection waits rather than take its place.
        assert!(waited() > before, "the wait is said");
        let answer = closed(&mut scraper)
            .await
            .expect("served once the place was free");
        assert!(answer.starts_with(b"HTTP/1.1 200"));
        drop(hog);
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_after_the_header_read_limit() {
        let _turn = TURN.lock().await;
        let addr = listening(1, Duration::from_millis(200), HOUR).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let rest = closed(&mut silent).await.expect("the silent client closed");
        assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"));
    }

    /// A kept-alive connection that goes quiet after its answer is closed as a silent
    /// one is: the header-read limit runs between requests too.
    #[tokio::test]
    async fn a_client_idle_after_its_answer_is_closed_after_the_header_read_limit() {
        let _turn = TURN.lock().await;
        let addr = listening(1, Duration::from_millis(200), HOUR).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = closed(&mut idle).await.expect("the idle client closed");
        assert!(answer.starts_with(b"HTTP/1.1 200"));
    }

    /// A head longer than [`MAX_HEAD`] is refused (431), not read into a buffer that
    /// grew for it on each of the connections.
    #[tokio::test]
    async fn a_request_head_over_8_kib_is_refused() {
        let addr = listening(4, HOUR, HOUR).await;
        for (size, status) in [(6 << 10, "HTTP/1.1 200 OK"), (16 << 10, "HTTP/1.1 431 ")] {
            let mut client = TcpStream::connect(addr).await.unwrap();
            let long = "a".repeat(size);
            let head = format!(
                "GET /metrics HTTP/1.1\r\nhost: x\r\nx-long: {long}\r\nconnection: close\r\n\r\n"
            );
            client.write_all(head.as_bytes()).await.unwrap();
            let answer = closed(&mut client).await.expect("the connection closes");
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with(status), "{size}: {answer}");
        }
    }

    #[tokio::test]
    async fn only_get_metrics_is_served() {
        let served = answer_to(&Method::GET, "/metrics", LIMITS.text).await;
        assert_eq!(served.status(), StatusCode::OK);
        assert_eq!(
            served.headers()[header::CONTENT_TYPE],
            super::super::CONTENT_TYPE
        );
        let head = answer_to(&Method::HEAD, "/metrics", LIMITS.text).await;
        assert_eq!(head.status(), StatusCode::OK);
        let refused = answer_to(&Method::POST, "/metrics", LIMITS.text).await;
        assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.headers()[header::ALLOW], "GET, HEAD");
        let elsewhere = answer_to(&Method::GET, "/", LIMITS.text).await;
        assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    }
}

/*!
The `/metrics` listener, started after the first response.

`GET /metrics` renders everything (see [`super::render`]); other paths are 404 and
other methods 405. An address that cannot be bound (port taken, no permission) is
reported once and leaves the service running without a listener.

With TLS configured (the `tls` feature), each connection does its handshake on its
own task, within [`HANDSHAKE_TIMEOUT`]; a client the server refuses (no certificate,
or one from another CA, when a client CA is set) is reported once a minute at most.

Memory stays bounded whatever clients do: at most [`LIMITS`]`.connections` are served
at once (one more accepted waits for a place, the rest in the kernel's backlog, and
that they wait is said once a minute at most), a connection that sends no complete
request head within [`LIMITS`]`.header_read` (idle between requests included) is
closed, and none lives longer than [`LIMITS`]`.lifetime` (a client that sends a
request and never reads the answer holds its place no longer than that).
*/

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

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

/// How many connections are served at once, how long one may take to send a request
/// head, and how long one may live.
#[derive(Clone, Copy)]
struct Limits {
    connections: usize,
    header_read: Duration,
    lifetime: Duration,
}

/// A scraper keeps one connection; 64 leave room for several, and a scrape every 15 s
/// keeps its connection within the 30 s. A scraper whose connection is closed after
/// 5 minutes opens another.
const LIMITS: Limits = Limits {
    connections: 64,
    header_read: Duration::from_secs(30),
    lifetime: Duration::from_secs(300),
};

/// Binds `addr` and serves `/metrics` on a task, over TLS when `tls` is given.
pub(crate) async fn start(addr: SocketAddr, tls: Option<&ServerTls>) {
    let acceptor: Acceptor = match tls {
        None => None,
        #[cfg(feature = "tls")]
        Some(files) => match crate::tls::server_config(files) {
            Ok(config) => Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))),
            Err(e) => {
                problem::report("metrics-tls", || {
                    format!("metrics: {e}; /metrics is not served")
                });
                return;
            }
        },
        // The settings refuse TLS files in a build without the `tls` feature.
        #[cfg(not(feature = "tls"))]
        Some(_) => return,
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            problem::report("metrics-listen", || {
                format!(
                    "metrics: cannot listen on {addr} ({e}); set COLDSTART_METRICS_ADDR to a free address, or `off`"
                )
            });
            return;
        }
    };
    coldstart_runtime::task::spawn(serve(listener, acceptor, LIMITS));
}

async fn serve(listener: TcpListener, acceptor: Acceptor, limits: Limits) {
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.connections));
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
        let Some(permit) = place(&open, limits).await else {
            return;
        };
        let acceptor = acceptor.clone();
        coldstart_runtime::task::spawn(async move {
            let _permit = permit;
            let Some(acceptor) = acceptor else {
                return connection(stream, limits).await;
            };
            #[cfg(feature = "tls")]
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => connection(stream, limits).await,
                Ok(Err(e)) => problem::report("metrics-handshake", || {
                    format!("metrics: a TLS client was refused: {e}")
                }),
                Err(_) => problem::report("metrics-handshake", || {
                    "metrics: a TLS client did not finish its handshake in time".into()
                }),
            }
            #[cfg(not(feature = "tls"))]
            match acceptor {}
        });
    }
}

/// A place among the connections served at once for a connection just accepted,
/// waiting for one to close when all are taken, which is said: a scraper that cannot
/// get through would otherwise see only its scrapes time out.
async fn place(
    open: &std::sync::Arc<tokio::sync::Semaphore>,
    limits: Limits,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if let Ok(permit) = open.clone().try_acquire_owned() {
        return Some(permit);
    }
    problem::report("metrics-connections", || {
        format!(
            "metrics: {} connections are open, the most served at once; new ones wait until one closes (a connection closes after {} s without a request, {} s after it opened at the latest)",
            limits.connections,
            limits.header_read.as_secs(),
            limits.lifetime.as_secs()
        )
    });
    // Never closed, so acquiring only waits.
    open.clone().acquire_owned().await.ok()
}

async fn connection<S>(stream: S, limits: Limits)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let served = http1::Builder::new()
        // hyper keeps no time of its own: without a timer the timeout is not applied.
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .serve_connection(TokioIo::new(stream), service_fn(answer));
    let mut served = std::pin::pin!(served);
    if tokio::time::timeout(limits.lifetime, served.as_mut())
        .await
        .is_err()
    {
        // At the end of its life the connection closes once the answer being written
        // is out (cut mid-body, a scrape fails as an unexpected end of its body), and
        // for a client that never reads it, after a last grace.
        served.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(LAST_ANSWER, served).await;
    }
}

/// How long a connection at the end of its life has to finish the answer it writes.
const LAST_ANSWER: Duration = Duration::from_secs(10);

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(respond(req.method(), req.uri().path()))
}

/// The response to `method path`.
pub(crate) fn respond(method: &Method, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (method, path) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            (StatusCode::OK, super::CONTENT_TYPE, super::render())
        }
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "metrics are at /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
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

    /// Serves on a free port with `limits`; the address.
    async fn listening(
        connections: usize,
        header_read: Duration,
        lifetime: Duration,
    ) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            connections,
            header_read,
            lifetime,
        };
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

    /// The tests that fill the places take turns: each counts the waits it caused.
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn waits() -> u64 {
        problem::reports("metrics-connections")
    }

    #[tokio::test]
    async fn connections_past_the_limit_wait_for_a_place_and_the_wait_is_said() {
        let _turn = TURN.lock().await;
        let before = waits();
        let addr = listening(1, HOUR, HOUR).await;
        let holder = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(waits(), before, "every place taken, but no one waits yet");
        let mut scraper = scrape_later(addr).await;
        let mut early = String::new();
        let waited = tokio::time::timeout(
            Duration::from_millis(300),
            scraper.read_to_string(&mut early),
        )
        .await;
        assert!(waited.is_err(), "served past the limit: {early}");
        assert_eq!(waits(), before + 1, "the scraper's wait is said");
        drop(holder);
        answered(&mut scraper, "served once the place is free").await;
    }

    #[tokio::test]
    async fn a_client_that_never_reads_its_answer_is_closed_at_the_end_of_its_life() {
        let _turn = TURN.lock().await;
        let addr = listening(1, HOUR, Duration::from_millis(300)).await;
        // Keeps its connection open with requests it never reads the answers of.
        let mut hog = TcpStream::connect(addr).await.unwrap();
        for _ in 0..3 {
            hog.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
        }
        let mut scraper = scrape_later(addr).await;
        answered(
            &mut scraper,
            "served once the hog's connection has lived its time",
        )
        .await;
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_and_never_holds_the_only_place_for_good() {
        let _turn = TURN.lock().await;
        let addr = listening(1, Duration::from_millis(200), HOUR).await;
        // Takes the only place and sends nothing.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut scraper = scrape_later(addr).await;
        answered(&mut scraper, "answered once the silent client is gone").await;

        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut rest))
            .await
            .expect("the server closed the silent connection");
        assert!(closed.is_ok_and(|_| rest.is_empty() || rest.starts_with(b"HTTP/1.1 408")));
    }

    /// A kept-alive connection that goes quiet after its answer is closed as a silent
    /// one is: the header-read limit runs between requests too.
    #[tokio::test]
    async fn a_client_idle_after_its_answer_is_closed_and_frees_its_place() {
        let _turn = TURN.lock().await;
        let addr = listening(1, Duration::from_millis(200), HOUR).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        idle.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        // Kept alive and quiet from here on, holding the only place.
        let mut scraper = scrape_later(addr).await;
        answered(&mut scraper, "answered once the idle client is closed").await;
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut rest));
        assert!(closed.await.is_ok(), "the idle connection was closed");
    }

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(respond(&Method::GET, "/metrics").status(), StatusCode::OK);
        assert_eq!(
            respond(&Method::GET, "/metrics").headers()[header::CONTENT_TYPE],
            super::super::CONTENT_TYPE
        );
        let refused = respond(&Method::POST, "/metrics");
        assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.headers()[header::ALLOW], "GET, HEAD");
        assert_eq!(respond(&Method::GET, "/").status(), StatusCode::NOT_FOUND);
    }
}

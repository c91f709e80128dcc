/*!
The HTTP/1.1 client the exporters send with: the OTLP/HTTP span exporter (through
`trace::otlp`) and the Pushgateway push. It runs on hyper's connection API, on the
program's runtime (no thread of its own), keeps one idle connection for the next
request to the same place (for at most [`MAX_IDLE`]), and bounds each exchange,
connection included, by a timeout.

hyper-util's pooled client would do the same job, but it brings HTTP/2 with it: code
the exporter never runs that every start of the program still loads and relocates
(BENCHMARKS.md, "Exporters").
*/

use std::fmt;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long before an exchange's deadline the reading of an answer's body stops.
const BODY_AHEAD: Duration = Duration::from_millis(5);

/// The largest answer read; a collector's or a gateway's is a few bytes.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// How long a kept connection may stay idle and still be used. A load balancer or a
/// NAT on the way may forget a connection idle longer without telling either end (an
/// AWS Application Load Balancer after 60 s by default, many NATs after a few
/// minutes); a request sent on it then waits out the whole timeout (10 s by default,
/// all of a Lambda flush's budget) before a new connection is tried. Lambda's pauses
/// between invocations are idle time too. A new connection costs a round trip (two
/// with TLS).
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(30);

/// Why an exchange failed, in one line, and whether an answer came that could not be
/// read: the server took the request then, and it is not sent again (a collector
/// that stored a batch and answered with a header hyper refuses would get it again
/// with every retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) why: String,
    pub(crate) answered: bool,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure {
            why,
            answered: false,
        }
    }
}

impl From<Failure> for String {
    fn from(failure: Failure) -> String {
        failure.why
    }
}

/// A client for one kind of destination: plain HTTP, or also HTTPS when given TLS
/// settings.
pub(crate) struct Client {
    timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<Option<Kept>>,
    max_idle: Duration,
}

/// The kept connection: where it goes, since when it is idle, and the connection.
type Kept = (Origin, Instant, SendRequest<Full<Bytes>>);

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where a request goes: what a kept connection is reused for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

impl Origin {
    fn of(uri: &Uri) -> Result<Origin, String> {
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(format!(
                    "`{uri}`: scheme `{other}` is not supported (http or https)"
                ));
            }
            None => return Err(format!("`{uri}` has no scheme (http:// or https://)")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{uri}` has no host"))?;
        if !crate::config::push::port_ok(uri) {
            return Err(format!(
                "`{uri}` has a port that is not a number from 1 to 65535"
            ));
        }
        Ok(Origin {
            https,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Client {
    /// A client for `http://` destinations only.
    pub(crate) fn plain(timeout: Duration) -> Client {
        Client {
            timeout,
            #[cfg(feature = "tls")]
            tls: None,
            idle: Mutex::new(None),
            max_idle: MAX_IDLE,
        }
    }

    /// A client that also speaks HTTPS with `tls`.
    #[cfg(all(feature = "tls", feature = "tracing"))]
    pub(crate) fn with_tls(timeout: Duration, tls: rustls::ClientConfig) -> Client {
        Client {
            tls: Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))),
            ..Client::plain(timeout)
        }
    }

    /// Sends `request` (its URI absolute) and reads the whole answer, whatever its
    /// status. Fails with one line saying what went wrong: a bad URI, a name that
    /// does not resolve, a refused connection, a TLS failure, no answer within the
    /// timeout, an answer that cannot be read.
    #[cfg(any(test, feature = "metrics"))]
    pub(crate) async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, Failure> {
        self.send_within(request, self.timeout).await
    }

    /// [`send`](Client::send) within `within` (the client's timeout at most): what is
    /// left of an export's timeout for a retry. The connection attempts share what is
    /// left of it once the name is resolved, and an answer whose head came within it
    /// is the answer, though its body is still coming.
    pub(crate) async fn send_within(
        &self,
        request: Request<Bytes>,
        within: Duration,
    ) -> Result<Response<Bytes>, Failure> {
        let within = within.min(self.timeout);
        // A time past what the clock can hold (`Duration::MAX` given in code) is none.
        let deadline = tokio::time::Instant::now().checked_add(within);
        match crate::until(deadline, self.boxed_exchange(request, deadline)).await {
            Some(outcome) => outcome,
            None => {
                let within =
                    Duration::from_millis(within.as_millis().try_into().unwrap_or(u64::MAX));
                Err(format!("no answer within {within:?}").into())
            }
        }
    }

    /// [`Client::exchange`], boxed by a function that is not itself async: the
    /// exchange's code is then made once, not once in each caller's code unit (the
    /// span exporter's and the push's each had copies, some 80 KB of the program's
    /// text, which is resident from its start).
    fn boxed_exchange(
        &self,
        request: Request<Bytes>,
        deadline: Option<tokio::time::Instant>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Response<Bytes>, Failure>> + Send + '_>> {
        Box::pin(self.exchange(request, deadline))
    }

    async fn exchange(
        &self,
        request: Request<Bytes>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Response<Bytes>, Failure> {
        let origin = Origin::of(request.uri())?;
        let request = origin_form(request, &origin)?;
        if let Some(sender) = self.take_idle(&origin) {
            // Unanswered, the server closed the kept connection before answering:
            // the request goes again, once, on a new connection. At worst the server
            // took it and crashed before answering, and gets it twice. An answer that
            // came and could not be read is the server's: not sent again.
            match self
                .send_on(sender, &origin, request.clone(), deadline)
                .await
            {
                Ok(response) => return Ok(response),
                Err(failure) if failure.answered => return Err(failure),
                Err(_) => {}
            }
        }
        let sender = self.connect(&origin, deadline).await?;
        self.send_on(sender, &origin, request, deadline).await
    }

    /// The kept connection, when it goes to `origin`, is still open and has not been
    /// idle longer than `max_idle`. One that is not is dropped, which closes it.
    fn take_idle(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        match idle.take() {
            Some((to, since, sender))
                if to == *origin && !sender.is_closed() && since.elapsed() <= self.max_idle =>
            {
                Some(sender)
            }
            _ => None,
        }
    }

    async fn send_on(
        &self,
        mut sender: SendRequest<Full<Bytes>>,
        origin: &Origin,
        request: Request<Bytes>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Response<Bytes>, Failure> {
        sender
            .ready()
            .await
            .map_err(|e| format!("connection to {origin} closed: {e}"))?;
        let response = sender
            .send_request(request.map(Full::new))
            .await
            // No answer came: on a kept connection that is what a server closing it
            // at the same moment looks like (the race every keep-alive client has).
            // An answer hyper cannot parse did come.
            .map_err(|e| Failure {
                why: format!("request to {origin} failed: {e}"),
                answered: e.is_parse(),
            })?;
        let (head, body) = response.into_parts();
        // Read until just before the exchange's deadline, which `send_within` waits
        // for on a timer of its own: a few milliseconds ahead, so that the head is
        // still the answer however the two timers fire.
        let body_deadline = deadline.map(|d| {
            d.checked_sub(BODY_AHEAD)
                .unwrap_or(d)
                .max(tokio::time::Instant::now())
        });
        let body = match crate::until(body_deadline, Limited::new(body, MAX_BODY).collect()).await {
            Some(Ok(body)) => body.to_bytes(),
            // The status is the answer: a body cut short, too long or still coming at
            // the deadline does not undo a 2xx, which would have the batch sent, and
            // received, again; nor does it make a 400 a network error to retry.
            Some(Err(_)) | None => return Ok(Response::from_parts(head, Bytes::new())),
        };
        if !sender.is_closed() {
            *self.idle.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((origin.clone(), Instant::now(), sender));
        }
        Ok(Response::from_parts(head, body))
    }

    async fn connect(
        &self,
        origin: &Origin,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<SendRequest<Full<Bytes>>, String> {
        let addresses: Vec<SocketAddr> =
            tokio::net::lookup_host((origin.host.as_str(), origin.port))
                .await
                .map_err(|e| format!("cannot resolve `{}`: {e}", origin.host))?
                .collect();
        // What the name's resolution left of the exchange's time.
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(tokio::time::Instant::now())
        });
        let stream = connect_any(&addresses, left)
            .await
            .map_err(|last| match last {
                Some(e) => format!("cannot connect to {origin}: {e}"),
                None => format!("`{}` resolves to no address", origin.host),
            })?;
        let _ = stream.set_nodelay(true);
        if !origin.https {
            return handshake(stream, origin).await;
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let name = rustls::pki_types::ServerName::try_from(origin.host.clone())
                .map_err(|e| format!("`{}` is not a TLS server name: {e}", origin.host))?;
            let stream = tls
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS with {origin} failed: {e}"))?;
            return handshake(stream, origin).await;
        }
        Err(format!(
            "{origin}: https needs coldstart's `tls` feature and TLS settings"
        ))
    }
}

/// A stream to the first of `addresses` that takes the connection, or the last error
/// (`None` for no address). Each attempt has an equal share of what is left of
/// `within`: an address that drops the attempt unanswered (a firewall, a full
/// backlog) would otherwise use up the exchange's whole timeout, and the next address
/// would never be tried; what a quick refusal leaves goes to the addresses after it.
async fn connect_any(
    addresses: &[SocketAddr],
    within: Duration,
) -> Result<TcpStream, Option<std::io::Error>> {
    // A time past what the clock can hold (`Duration::MAX` given in code) is no limit.
    let deadline = tokio::time::Instant::now().checked_add(within);
    let mut last = None;
    for (tried, address) in addresses.iter().enumerate() {
        let left = u32::try_from(addresses.len() - tried).unwrap_or(u32::MAX);
        let share = match tried {
            0 => within / left,
            _ => {
                deadline.map_or(within, |d| {
                    d.saturating_duration_since(tokio::time::Instant::now())
                }) / left
            }
        };
        match tokio::time::timeout(share, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{address} did not answer within {share:?}"),
                ))
            }
        }
    }
    Err(last)
}

async fn handshake<T>(io: T, origin: &Origin) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP with {origin} failed: {e}"))?;
    coldstart_runtime::task::spawn(connection);
    Ok(sender)
}

/// `request` as sent on a connection: the path alone on the request line, the
/// authority in `Host`.
fn origin_form(request: Request<Bytes>, origin: &Origin) -> Result<Request<Bytes>, String> {
    let (mut head, body) = request.into_parts();
    let default_port = if origin.https { 443 } else { 80 };
    let host = if origin.port == default_port {
        head.uri.host().unwrap_or_default().to_owned()
    } else {
        format!("{}:{}", head.uri.host().unwrap_or_default(), origin.port)
    };
    let value = HeaderValue::try_from(host).map_err(|e| format!("`{}`: {e}", head.uri))?;
    head.headers.insert(header::HOST, value);
    // `path()` is `/` where the URI has none, also before a query (`http://c?x=1`,
    // whose path and query alone, `?x=1`, is no request target).
    let path = match head.uri.query() {
        Some(query) => format!("{}?{query}", head.uri.path()),
        None => head.uri.path().to_owned(),
    };
    head.uri = path.parse().map_err(|e| format!("`{}`: {e}", head.uri))?;
    Ok(Request::from_parts(head, body))
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::{Read, Write};

    use super::*;

    fn request(uri: &str) -> Request<Bytes> {
        Request::post(uri)
            .body(Bytes::from_static(b"payload"))
            .unwrap()
    }

    #[test]
    fn origins_and_request_lines() {
        let origin = Origin::of(&"https://[::1]/v1/traces".parse().unwrap()).unwrap();
        assert_eq!(origin.to_string(), "[::1]:443");
        let sent = origin_form(request("https://[::1]/v1/traces?x=1"), &origin).unwrap();
        assert_eq!(sent.uri(), "/v1/traces?x=1");
        assert_eq!(sent.headers()[header::HOST], "[::1]");
        let origin = Origin::of(&"http://collector:4318".parse().unwrap()).unwrap();
        let sent = origin_form(request("http://collector:4318"), &origin).unwrap();
        assert_eq!((sent.uri().to_string(), origin.port), ("/".into(), 4318));
        assert_eq!(sent.headers()[header::HOST], "collector:4318");
        let e = Origin::of(&"ftp://h/x".parse().unwrap()).unwrap_err();
        assert!(e.contains("`ftp` is not supported (http or https)"), "{e}");
        let e = Origin::of(&"/v1/traces".parse().unwrap()).unwrap_err();
        assert!(e.contains("has no scheme"), "{e}");
        // `http::Uri` takes these; a client went to port 80 with them.
        for bad in [
            "http://collector:70000",
            "http://collector:4318x",
            "http://collector:0",
        ] {
            let e = Origin::of(&bad.parse().unwrap()).unwrap_err();
            assert!(e.contains("not a number from 1 to 65535"), "{bad}: {e}");
        }
    }

    /// A server that reads one request (its body the 7 bytes of [`request`]'s) and
    /// writes `answer`; then, with `hold`, keeps the connection open until the sender
    /// it returns is dropped, else closes it. Its URL and that sender.
    fn answering_once(answer: String, hold: bool) -> (String, std::sync::mpsc::Sender<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (done, held) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let mut body = [0u8; 7];
            let _ = stream.read_exact(&mut body);
            let _ = stream.write_all(answer.as_bytes());
            if hold {
                let _ = held.recv();
            }
        });
        (url, done)
    }

    /// An answer whose body is cut short is still its status: a 2xx is the collector's
    /// yes (called a failure, the batch it took was sent again), and a 400 its no (called
    /// a network failure, the batch was retried).
    #[tokio::test]
    async fn an_answer_with_a_body_cut_short_is_its_status() {
        for status in [200, 400] {
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 10\r\n\r\nok");
            let (url, _) = answering_once(answer, false);
            let response = Client::plain(Duration::from_secs(5))
                .send(request(&url))
                .await
                .unwrap();
            assert_eq!(response.status(), status);
        }
    }

    /// An answer whose head came and whose body is still coming at the deadline is its
    /// status too: the 2xx was called no answer, and the batch the collector took was
    /// sent again.
    #[tokio::test]
    async fn an_answer_whose_body_stalls_is_its_status() {
        // Held open, the rest of the body never sent, until the test ends.
        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok".to_owned();
        let (url, done) = answering_once(answer, true);
        let client = Client::plain(Duration::from_secs(5));
        let response = client
            .send_within(request(&url), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        drop(done);
    }

    /// An endpoint with a query and no path is requested at `/?query`: `?query` alone
    /// is no request target, and every export failed as a network error.
    #[test]
    fn a_query_without_a_path_is_requested_at_the_root() {
        for (url, target) in [
            ("http://c:4318?tenant=a", "/?tenant=a"),
            ("http://c:4318/v1/traces?tenant=a", "/v1/traces?tenant=a"),
            ("http://c:4318", "/"),
        ] {
            let request = request(url);
            let origin = Origin::of(request.uri()).unwrap();
            let sent = origin_form(request, &origin).unwrap();
            assert_eq!(sent.uri().to_string(), target, "{url}");
        }
    }

    /// A loopback address just freed: nothing listens there, so a connection is
    /// refused at once.
    pub(crate) fn refused_address() -> std::net::SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    /// A server that answers every request it reads on one connection, then waits
    /// for the next connection; it sends the request heads it read to the test.
    pub(crate) fn server(
        answers_per_connection: usize,
    ) -> (String, std::sync::mpsc::Receiver<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (heads, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let mut stream = stream.unwrap();
                for _ in 0..answers_per_connection {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if stream.read(&mut byte).unwrap_or(0) == 0 {
                            break;
                        }
                        head.push(byte[0]);
                    }
                    if head.is_empty() {
                        // The client closed it: on to the next connection.
                        break;
                    }
                    let mut body = [0u8; 7];
                    stream.read_exact(&mut body).unwrap();
                    let _ = heads.send(format!(
                        "connection {n}: {}",
                        String::from_utf8_lossy(&head)
                    ));
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .unwrap();
                }
                // Closed here: the client must notice and connect again.
            }
        });
        (url, received)
    }

    #[tokio::test]
    async fn keeps_one_connection_and_reconnects_when_the_server_closed_it() {
        let (url, heads) = server(2);
        let client = Client::plain(Duration::from_secs(5));
        for _ in 0..3 {
            let response = client
                .send(request(&format!("{url}/v1/traces")))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.body().as_ref(), b"ok");
        }
        let seen: Vec<String> = heads.try_iter().collect();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen[0].starts_with("connection 0: POST /v1/traces HTTP/1.1\r\n"),
            "{seen:?}"
        );
        assert!(
            seen[1].starts_with("connection 0: "),
            "the second request reuses it: {seen:?}"
        );
        assert!(
            seen[2].starts_with("connection 1: "),
            "the third needs a new one: {seen:?}"
        );
        let host = url.trim_start_matches("http://");
        assert!(
            seen[0]
                .to_ascii_lowercase()
                .contains(&format!("host: {host}\r\n")),
            "{seen:?}"
        );
    }

    /// A kept connection idle longer than `max_idle` is closed, not used: the next
    /// request goes on a new one.
    #[tokio::test]
    async fn a_connection_idle_too_long_is_not_used_again() {
        // The server would answer a third request on the first connection.
        let (url, heads) = server(3);
        let client = Client {
            max_idle: Duration::from_secs(1),
            ..Client::plain(Duration::from_secs(5))
        };
        for pause in [0, 0, 1500] {
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let response = client
                .send(request(&format!("{url}/v1/traces")))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let seen: Vec<String> = heads.try_iter().collect();
        let connections: Vec<&str> = seen.iter().map(|h| &h[..12]).collect();
        assert_eq!(
            connections,
            ["connection 0", "connection 0", "connection 1"],
            "{seen:?}"
        );
    }

    /// An answer that comes and cannot be read (a header hyper refuses) is the
    /// server's: the request is not sent again on a new connection, though the kept
    /// connection it went on is gone.
    #[tokio::test]
    async fn an_unreadable_answer_is_not_sent_again() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (heads, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let answers: [&[u8]; 2] = [
                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nbad\x01header: x\r\ncontent-length: 0\r\n\r\n",
            ];
            for mut stream in listener.incoming().flatten() {
                for answer in answers {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                            _ => return,
                        }
                    }
                    let _ = heads.send(());
                    let _ = stream.write_all(answer);
                }
            }
        });
        let client = Client::plain(Duration::from_secs(5));
        assert!(client.send(request(&url)).await.is_ok());
        let e = client.send(request(&url)).await.unwrap_err();
        assert!(e.answered, "{e}");
        assert_eq!(
            received.try_iter().count(),
            2,
            "the second request went once"
        );
    }

    #[tokio::test]
    async fn failures_name_what_failed() {
        let client = Client::plain(Duration::from_secs(5));
        let port = refused_address().port();
        let e = client
            .send(request(&format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap_err()
            .why;
        assert!(
            e.starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
            "{e}"
        );
        // `.invalid` never resolves (RFC 6761).
        let e = client
            .send(request("http://collector.invalid:4318/"))
            .await
            .unwrap_err()
            .why;
        assert!(e.starts_with("cannot resolve `collector.invalid`: "), "{e}");
        // A plain client reaches the port, then says why it cannot go on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let e = client
            .send(request(&format!("https://{address}/")))
            .await
            .unwrap_err()
            .why;
        assert_eq!(
            e,
            format!("{address}: https needs coldstart's `tls` feature and TLS settings")
        );
    }

    /// An address that leaves the connection attempt unanswered (here a full backlog:
    /// the kernel drops the handshake) gets its share of the timeout, and the next one
    /// is tried: before, the first took the exchange's whole timeout.
    #[tokio::test]
    async fn an_address_that_never_answers_does_not_keep_the_next_from_being_tried() {
        use std::os::fd::AsRawFd;
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_address = silent.local_addr().unwrap();
        // SAFETY: listen(2) again on a listening socket the test owns sets its backlog.
        assert_eq!(unsafe { libc::listen(silent.as_raw_fd(), 0) }, 0);
        // The one place in the queue taken, later attempts get no answer at all.
        let _queued = std::net::TcpStream::connect(silent_address).unwrap();
        let good = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let good_address = good.local_addr().unwrap();
        // Bounded, so that the test fails instead of hanging where the silent address
        // would keep the attempt for good.
        let stream = tokio::time::timeout(
            Duration::from_secs(10),
            connect_any(&[silent_address, good_address], Duration::from_secs(2)),
        )
        .await
        .expect("the next address was tried")
        .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good_address);
        let e = connect_any(&[silent_address], Duration::from_millis(300))
            .await
            .unwrap_err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            format!("{silent_address} did not answer within 300ms")
        );
        assert!(
            connect_any(&[], Duration::from_secs(1))
                .await
                .unwrap_err()
                .is_none()
        );
        drop((silent, good));
    }

    /// On a paused clock the timeout passes without real waiting.
    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_answers_is_cut_off_by_the_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let client = Client::plain(Duration::from_secs(3));
        let e = client.send(request(&url)).await.unwrap_err();
        assert_eq!(e.why, "no answer within 3s");
        assert!(!e.answered);
        drop(listener);
    }
}

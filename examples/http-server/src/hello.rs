/*!
The hello service: the listener, the handler and the serving loop. The `http-server`
example serves with it on `#[coldstart::main]`, and the start-up baselines
(`benches/baselines`) and the runtime-alone target (`benches/runtime-alone`) compile
this same file as a module of their own.

It must not reference coldstart, nor carry crate attributes: the baselines build it
in a package without coldstart, so that cargo gives tokio only the features a bare
`#[tokio::main]` hello asks for.
*/

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use std::task::{Context, Poll};

use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_layer::{Identity, Layer};
use tower_service::Service;

/// The default port, when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8080;

/// The address to listen on: `BIND` (default `127.0.0.1`) and `PORT` (default 8080).
/// A blank value is unset, and blanks around a value are not part of it, as for
/// coldstart's settings (a compose file's `PORT=${PORT}` with `PORT` unset).
///
/// ```
/// let addr = http_server::listen_addr_from(None, Some("9000"))?;
/// assert_eq!(addr.to_string(), "127.0.0.1:9000");
/// let addr = http_server::listen_addr_from(Some(" "), Some(" 9000 "))?;
/// assert_eq!(addr.to_string(), "127.0.0.1:9000");
/// assert!(http_server::listen_addr_from(Some("localhost"), None).is_err());
/// # Ok::<(), anyhow::Error>(())
/// ```
///
/// # Errors
///
/// `BIND` that is not an IP address, or `PORT` that is not a number from 0 to 65535.
pub fn listen_addr() -> anyhow::Result<SocketAddr> {
    let var = |name| std::env::var(name).ok();
    listen_addr_from(var("BIND").as_deref(), var("PORT").as_deref())
}

/// [`listen_addr`] with the variables' values given.
///
/// # Errors
///
/// As [`listen_addr`].
pub fn listen_addr_from(bind: Option<&str>, port: Option<&str>) -> anyhow::Result<SocketAddr> {
    let bind = bind.map(str::trim).filter(|v| !v.is_empty());
    let port = port.map(str::trim).filter(|v| !v.is_empty());
    let ip: IpAddr = match bind {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(b) => b.parse().map_err(|_| {
            anyhow::anyhow!("set BIND to an IP address such as 127.0.0.1 or 0.0.0.0, got `{b}`")
        })?,
    };
    let port: u16 = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse()
            .map_err(|_| anyhow::anyhow!("set PORT to a number from 0 to 65535, got `{p}`"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// Binds the listener at [`listen_addr`]; the address it listens on (with `PORT=0`,
/// the port the system chose).
///
/// # Errors
///
/// A bad `BIND` or `PORT`, or an address that cannot be bound (the message says which
/// variables change it).
pub async fn bind() -> anyhow::Result<(TcpListener, SocketAddr)> {
    let addr = listen_addr()?;
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr} (set PORT or BIND to change it): {e}")
    })?;
    let addr = listener.local_addr().unwrap_or(addr);
    Ok((listener, addr))
}

/// How long a connection may take to send a request's head: one that sends nothing,
/// or half a head, is closed then, instead of holding its task and descriptor for
/// good (hyper applies no limit without a timer).
pub const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `eprintln!` in one `write`: stderr is unbuffered, so `eprintln!` writes each piece
/// of its format on its own, and the example's start-up line (an address and a plan)
/// took 30 `write` calls on the way to the first response (counted in a system-call
/// trace). Unlike `eprintln!`, a failed write is ignored, not a panic.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::print_line(::std::format_args!($($arg)*))
    };
}

/// What [`say!`] calls: formats `line` and writes it with its newline at once (a line
/// shorter than a pipe's buffer is written whole).
#[doc(hidden)]
pub fn print_line(line: std::fmt::Arguments<'_>) {
    let mut line = line.to_string();
    line.push('\n');
    // Nowhere to report a failed write to stderr.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// The whole body of a start-up baseline: bind, say where, serve `hello` with no
/// middleware until the process ends. Every baseline runs exactly this, on its own runtime.
///
/// # Errors
///
/// As [`bind`].
pub async fn serve_baseline(name: &str) -> anyhow::Result<()> {
    let (listener, addr) = bind().await?;
    say!("{name}: listening on http://{addr}");
    serve(
        listener,
        Identity::new(),
        || "hello\n",
        std::future::pending(),
    )
    .await?;
    Ok(())
}

/// Serves HTTP/1.1 on `listener`, [`Hello`] answering with `greeting()` wrapped in
/// `layer`, until `stop` resolves (give `std::future::pending()` to serve for ever);
/// then drains: no new connection is accepted, idle keep-alive connections are
/// closed, and every request already read is answered before this returns. A
/// connection that fails is dropped; the listener keeps going.
///
/// # Errors
///
/// Never returns an error today; the type leaves room for one.
pub async fn serve<L, B>(
    listener: TcpListener,
    layer: L,
    greeting: fn() -> &'static str,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    L: Layer<Hello>,
    L::Service: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    <L::Service as Service<Request<Incoming>>>::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = layer.layer(Hello { greeting });
    let connections = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    // Failed accepts not said yet: a line at most once a second.
    let mut failed = 0u64;
    let mut said_at: Option<tokio::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                if failed > 0 {
                    say!("accept failed {failed} more time(s) before this connection");
                    failed = 0;
                }
                stream
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning,
                // and say so at most once a second, the others counted.
                if said_at.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(1)) {
                    let more = match failed {
                        0 => String::new(),
                        n => format!(" ({n} more since the last line)"),
                    };
                    say!("accept failed: {e}{more}");
                    said_at = Some(tokio::time::Instant::now());
                    failed = 0;
                } else {
                    failed += 1;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(service.clone());
        let connection = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// The handler, as a tower service: `greeting()` for every request.
#[derive(Debug, Clone, Copy)]
pub struct Hello {
    greeting: fn() -> &'static str,
}

impl Service<Request<Incoming>> for Hello {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<Incoming>) -> Self::Future {
        let body = Bytes::from_static((self.greeting)().as_bytes());
        std::future::ready(Ok(Response::new(Full::new(body))))
    }
}

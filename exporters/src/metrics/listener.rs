/*!
The `/metrics` listener, started after the first response.

`GET /metrics` renders everything (see [`super::render`]); other paths are 404 and
other methods 405. An address that cannot be bound (port taken, no permission) is
reported once and leaves the service running without a listener.

With TLS configured (the `tls` feature), each connection does its handshake on its
own task, within [`HANDSHAKE_TIMEOUT`]; a client the server refuses (no certificate,
or one from another CA, when a client CA is set) is reported once a minute at most.
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
    tokio::spawn(serve(listener, acceptor));
}

async fn serve(listener: TcpListener, acceptor: Acceptor) {
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
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return connection(stream).await;
            };
            #[cfg(feature = "tls")]
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => connection(stream).await,
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

async fn connection<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service_fn(answer))
        .await;
}

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
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(respond(&Method::GET, "/metrics").status(), StatusCode::OK);
        assert_eq!(
            respond(&Method::GET, "/metrics").headers()[header::CONTENT_TYPE],
            super::super::CONTENT_TYPE
        );
        assert_eq!(
            respond(&Method::POST, "/metrics").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(respond(&Method::GET, "/").status(), StatusCode::NOT_FOUND);
    }
}

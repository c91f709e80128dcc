/*!
The `/metrics` listener, started after the first response.

`GET /metrics` renders everything (see [`super::render`]); other paths are 404 and
other methods 405. An address that cannot be bound (port taken, no permission) is
reported once and leaves the service running without a listener.
*/

use std::convert::Infallible;
use std::net::SocketAddr;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::problem;

/// Binds `addr` and serves `/metrics` on a task.
pub(crate) async fn start(addr: SocketAddr) {
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
    tokio::spawn(serve(listener));
}

async fn serve(listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, usually: wait instead of spinning.
                problem::report("metrics-accept", || format!("metrics: accept failed: {e}"));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
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

//! The tower layer under a real hyper server and client: the first response is marked
//! only once its body has been fully sent and written, not when the handler returns.
//! One test, since the lifecycle is process-wide.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used)]

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::first_response::FirstResponseLayer;
use coldstart_runtime::lifecycle::{self, Trigger};
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::{Bytes, Frame};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower_layer::Layer;

#[path = "support/fed.rs"]
mod fed;
use fed::Fed;

/// The server's side of the connection, noting for each write whether the first
/// response was already marked done when the server wrote.
struct Watched {
    stream: tokio::net::TcpStream,
    done_at_write: Arc<Mutex<Vec<bool>>>,
}

impl Watched {
    fn note(&self) {
        let done = lifecycle::is_first_response_done();
        self.done_at_write.lock().unwrap().push(done);
    }
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.note();
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.note();
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[test]
fn the_first_response_is_marked_when_its_body_has_been_sent() {
    coldstart_runtime::block_on(&Settings::NONE, async {
        let (service, tx) = Fed::new();
        let service = FirstResponseLayer::new().layer(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let done_at_write = Arc::new(Mutex::new(Vec::new()));
        let noted = done_at_write.clone();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let stream = Watched {
                stream,
                done_at_write: noted,
            };
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await
                .unwrap();
        });

        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut client, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = Request::get("/")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let mut response = client.send_request(request).await.unwrap();

        // Headers and a first chunk have arrived: the response is not done yet.
        tx.send(Frame::data(Bytes::from_static(b"hel"))).unwrap();
        let first = response.body_mut().frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "hel");
        assert!(!lifecycle::is_first_response_done());

        // The last chunk and the end of the body: now it is.
        tx.send(Frame::data(Bytes::from_static(b"lo\n"))).unwrap();
        drop(tx);
        let rest = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(rest, "lo\n");
        tokio::time::timeout(Duration::from_secs(5), lifecycle::first_response())
            .await
            .unwrap();
        assert_eq!(lifecycle::trigger(), Some(Trigger::Response));
        // The server writes the end of the body (the last chunk's terminator) after
        // it has seen the body end: work woken by the mark must not run beside that.
        let writes = done_at_write.lock().unwrap().clone();
        assert!(writes.len() >= 2, "writes seen: {writes:?}");
        assert!(
            writes.iter().all(|done| !done),
            "marked done before the server wrote the response's last bytes: {writes:?}"
        );
    });
}

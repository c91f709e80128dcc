//! The tower layer under a real hyper HTTP/2 server and client, with a response that
//! ends in trailers (as every gRPC response does). After a trailers frame the server
//! polls the body no more and never asks whether it has ended, and a body need not say
//! so (`is_end_stream` is only a hint; this one never says it): the trailers alone
//! mark the response done. One test, since the lifecycle is process-wide.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::first_response::FirstResponseLayer;
use coldstart_runtime::lifecycle::{self, Trigger};
use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use hyper::{HeaderMap, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tower_layer::Layer;

#[path = "support/fed.rs"]
mod fed;
use fed::Fed;

#[test]
fn an_http2_response_that_ends_in_trailers_is_marked_done() {
    coldstart_runtime::block_on(&Settings::NONE, async {
        let (service, tx) = Fed::new();
        let service = FirstResponseLayer::new().layer(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await
                .unwrap();
        });

        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut client, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let request = Request::get("http://localhost/")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let mut response = client.send_request(request).await.unwrap();

        tx.send(Frame::data(Bytes::from_static(b"hello\n")))
            .unwrap();
        let first = response.body_mut().frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "hello\n");
        assert!(!lifecycle::is_first_response_done());

        // The trailers end the response; the sender stays open, so the body never
        // ends by running out of frames.
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        tx.send(Frame::trailers(trailers)).unwrap();
        let last = response.body_mut().frame().await.unwrap().unwrap();
        assert_eq!(last.into_trailers().unwrap()["grpc-status"], "0");
        tokio::time::timeout(Duration::from_secs(5), lifecycle::first_response())
            .await
            .expect("a response that ended in trailers was never marked done");
        assert_eq!(lifecycle::trigger(), Some(Trigger::Response));
        drop(tx);
    });
}

//! The tower layer under a real hyper server: a first response whose length the
//! server knows (`Content-Length`) is marked once that many bytes have gone, though
//! its body never says it has ended (tower-http's `ServeFile`, a proxied stream): the
//! server writes them and drops the body without asking it again. And the answer to a
//! HEAD, which has no body to send, is marked when the server takes it, as is an
//! answer with no body by its status (204), its length (0, by its header or by its
//! body's exact size hint), or by its request (a
//! CONNECT answered 2xx: the connection becomes a tunnel). One case per
//! process, since the lifecycle is process-wide: this test binary runs itself again
//! with `LENGTH_CASE` naming the case.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used)]

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

mod support;

const CASE: &str = "LENGTH_CASE";

/// The cases, in the child; nothing in the parent.
#[test]
fn case() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let head = case == "head";
    let connect = case == "connect";
    // Answers whose body is never read: the server has no bytes of it to send.
    let bodiless = case == "no content" || case == "zero length" || case == "empty hint";
    coldstart_runtime::block_on(&Settings::NONE, async move {
        let (service, tx) = match case.as_str() {
            "no content" => {
                let (fed, tx) = Fed::new();
                (fed.with_status(hyper::StatusCode::NO_CONTENT), tx)
            }
            "zero length" => Fed::with_length(Some(0)),
            "empty hint" => {
                let (fed, tx) = Fed::new();
                (fed.with_empty_hint(), tx)
            }
            "connect" => Fed::with_length(None),
            _ => Fed::with_length(Some(6)),
        };
        let service = FirstResponseLayer::new().layer(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
        });
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut client, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let (method, uri) = match (head, connect) {
            (true, _) => ("HEAD", "/"),
            (_, true) => ("CONNECT", "example.com:443"),
            _ => ("GET", "/"),
        };
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let response = client.send_request(request).await.unwrap();
        if bodiless {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(body.is_empty());
        } else if connect {
            // A tunnel: hyper sends no body after the 2xx and never polls it.
            assert!(response.status().is_success());
        } else if !head {
            let mut body = response.into_body();
            tx.send(Frame::data(Bytes::from_static(b"hel"))).unwrap();
            // Three of the six bytes have gone: not yet the first response.
            let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(first, "hel");
            assert!(
                !lifecycle::is_first_response_done(),
                "marked at 3 of 6 bytes"
            );
            tx.send(Frame::data(Bytes::from_static(b"lo\n"))).unwrap();
            // The sender stays: the body never ends by itself.
            let rest = body.collect().await.unwrap().to_bytes();
            assert_eq!(rest, "lo\n");
        }
        // The fallback would mark it only after 10 s.
        let marked = tokio::time::timeout(Duration::from_secs(5), lifecycle::first_response());
        assert!(marked.await.is_ok(), "the first response was never marked");
        assert_eq!(lifecycle::trigger(), Some(Trigger::Response));
        drop(tx);
        println!("case: marked");
    });
}

fn marks(case: &str) {
    let out = support::child(CASE, case, &[]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("case: marked"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_response_of_known_length_is_marked_once_its_bytes_are_taken() {
    marks("length");
}

#[test]
fn the_answer_to_a_head_is_marked() {
    marks("head");
}

/// A 204 whose body type never says it has ended: hyper sends no body and drops it
/// unread.
#[test]
fn an_answer_without_a_body_by_its_status_is_marked() {
    marks("no content");
}

#[test]
fn an_answer_of_length_zero_is_marked() {
    marks("zero length");
}

/// A body that says it is empty by its exact size hint alone, with no header: hyper
/// writes `content-length: 0` and drops it unpolled; only the fallback timer, 10 s
/// later, marked it.
#[test]
fn an_answer_empty_by_its_size_hint_is_marked() {
    marks("empty hint");
}

/// A CONNECT answered 2xx (a proxy's first request): hyper sends no body, over
/// HTTP/1 or HTTP/2, and never polls it; the mark waited for the fallback timer.
#[test]
fn the_answer_to_a_connect_is_marked() {
    marks("connect");
}

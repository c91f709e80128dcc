//! The tower layer on an axum router, as users add it (`Router::layer`): the first
//! response is marked once axum has sent it. One test: the lifecycle is process-wide.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use coldstart_bootstrap::Settings;
use coldstart_runtime::first_response::FirstResponseLayer;
use coldstart_runtime::lifecycle::{self, Trigger};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn an_axum_router_marks_the_first_response() {
    coldstart_runtime::block_on(&Settings::NONE, async {
        let app = Router::new()
            .route("/", get(|| async { "hello\n" }))
            .layer(FirstResponseLayer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        assert!(!lifecycle::is_first_response_done());

        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.ends_with("\r\n\r\nhello\n"), "{response}");

        tokio::time::timeout(Duration::from_secs(5), lifecycle::first_response())
            .await
            .unwrap();
        assert_eq!(lifecycle::trigger(), Some(Trigger::Response));
    });
}

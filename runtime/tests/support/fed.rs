//! What the tower layer's server tests share: a service that answers its one request
//! with a body the test feeds frame by frame.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response};
use tokio::sync::mpsc;

/// A response body the test feeds frame by frame; it ends when the sender is dropped.
/// It never says it has ended before then (`is_end_stream` keeps its default).
pub struct Frames(mpsc::UnboundedReceiver<Frame<Bytes>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

/// Answers the one request with the fed body, the `Content-Length` given, and the
/// status given (200 unless said).
#[derive(Clone)]
pub struct Fed(
    Arc<Mutex<Option<mpsc::UnboundedReceiver<Frame<Bytes>>>>>,
    Option<u64>,
    hyper::StatusCode,
);

impl Fed {
    /// The service, and the sender that feeds its answer's body.
    pub fn new() -> (Fed, mpsc::UnboundedSender<Frame<Bytes>>) {
        Fed::with_length(None)
    }

    /// [`Fed::new`], the answer saying `Content-Length: length` when given.
    pub fn with_length(length: Option<u64>) -> (Fed, mpsc::UnboundedSender<Frame<Bytes>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Fed(
                Arc::new(Mutex::new(Some(rx))),
                length,
                hyper::StatusCode::OK,
            ),
            tx,
        )
    }

    /// The same service answering with `status`.
    pub fn with_status(self, status: hyper::StatusCode) -> Fed {
        Fed(self.0, self.1, status)
    }
}

impl tower_service::Service<Request<Incoming>> for Fed {
    type Response = Response<Frames>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Incoming>) -> Self::Future {
        let rx = self.0.lock().unwrap().take().unwrap();
        let mut response = Response::new(Frames(rx));
        *response.status_mut() = self.2;
        if let Some(length) = self.1 {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_LENGTH, length.into());
        }
        Box::pin(async move { Ok(response) })
    }
}

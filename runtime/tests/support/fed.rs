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
/// It never says it has ended before then (`is_end_stream` keeps its default). With
/// `empty_hint`, its size hint is exactly 0 bytes.
pub struct Frames(mpsc::UnboundedReceiver<Frame<Bytes>>, bool);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.1 {
            http_body::SizeHint::with_exact(0)
        } else {
            http_body::SizeHint::default()
        }
    }
}

/// Answers the one request with the fed body, the `Content-Length` given, and the
/// status given (200 unless said).
#[derive(Clone)]
pub struct Fed(
    Arc<Mutex<Option<mpsc::UnboundedReceiver<Frame<Bytes>>>>>,
    Option<u64>,
    hyper::StatusCode,
    bool,
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
                false,
            ),
            tx,
        )
    }

    /// The same service answering with `status`.
    pub fn with_status(self, status: hyper::StatusCode) -> Fed {
        Fed(self.0, self.1, status, self.3)
    }

    /// The same service, its answer's body hinting exactly 0 bytes (no header).
    pub fn with_empty_hint(self) -> Fed {
        Fed(self.0, self.1, self.2, true)
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
        let mut response = Response::new(Frames(rx, self.3));
        *response.status_mut() = self.2;
        if let Some(length) = self.1 {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_LENGTH, length.into());
        }
        Box::pin(async move { Ok(response) })
    }
}

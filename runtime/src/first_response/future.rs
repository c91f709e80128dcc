//! The response future, and the body wrapper that sees the body end.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::lifecycle;

pin_project! {
    /// The future of [`super::FirstResponse`]: the inner response with its body wrapped.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        bodiless: Bodiless,
    }
}

/// Whether the request makes its answer one without a body to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bodiless {
    /// Any answer: a HEAD's.
    Always,
    /// A 2xx answer: a CONNECT's, after which the connection is a tunnel.
    WhenSuccess,
    /// As its status and length say.
    Never,
}

impl<F> ResponseFuture<F> {
    /// The future of a response to a request that makes it `bodiless`.
    pub(crate) fn new(inner: F, bodiless: Bodiless) -> Self {
        ResponseFuture { inner, bodiless }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<MarkOnEnd<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        // After the first response, nothing more to read.
        if lifecycle::is_first_response_done() {
            return Poll::Ready(Ok(response.map(MarkOnEnd::done)));
        }
        // The header's, else the body's exact size hint: hyper writes that one as the
        // header itself.
        let length =
            content_length(response.headers()).or_else(|| response.body().size_hint().exact());
        // No body to send: the answer to a HEAD, a CONNECT's 2xx, a status that has
        // none (1xx, 204, 304), a length of 0. hyper writes the head and may never
        // poll the body.
        let status = response.status();
        let bodiless = match this.bodiless {
            Bodiless::Always => true,
            Bodiless::WhenSuccess => status.is_success(),
            Bodiless::Never => false,
        } || matches!(status.as_u16(), 100..=199 | 204 | 304);
        if bodiless || length == Some(0) {
            mark_after_this_poll();
            return Poll::Ready(Ok(response.map(MarkOnEnd::done)));
        }
        Poll::Ready(Ok(response.map(|body| MarkOnEnd::sized(body, length))))
    }
}

/// The `Content-Length` a response declares, if one.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    std::str::from_utf8(headers.get(http::header::CONTENT_LENGTH)?.as_bytes())
        .ok()?
        .parse()
        .ok()
}

pin_project! {
    /// A response body that marks the first response done when its end has been
    /// reached: its last frame was taken, it says it has nothing more to send, or
    /// the bytes its length announced have been taken (a server that wrote them
    /// asks no further, and a body need not say it has ended).
    #[derive(Debug)]
    pub struct MarkOnEnd<B> {
        #[pin]
        inner: B,
        marked: bool,
        // Bytes still to come of the length announced; counted until the mark only.
        remaining: Option<u64>,
    }
}

impl<B: Body> MarkOnEnd<B> {
    /// Wraps `inner`, whose length is the one its size hint gives, if exact.
    pub fn new(inner: B) -> Self {
        if lifecycle::is_first_response_done() {
            MarkOnEnd::done(inner)
        } else {
            MarkOnEnd::sized(inner, None)
        }
    }

    /// Wraps `inner`, sent after the first response was marked.
    fn done(inner: B) -> Self {
        MarkOnEnd {
            inner,
            marked: true,
            remaining: None,
        }
    }

    /// Wraps `inner`, sent before the first response was marked, whose length is
    /// `length` (a `Content-Length`), else the one its size hint gives, if exact.
    fn sized(inner: B, length: Option<u64>) -> Self {
        let remaining = length.or_else(|| inner.size_hint().exact());
        MarkOnEnd {
            inner,
            marked: false,
            remaining,
        }
    }
}

fn mark(marked: &mut bool) {
    if !*marked {
        *marked = true;
        mark_after_this_poll();
    }
}

/// Marks the first response done once the task that saw the body end has finished
/// its current poll. The server writes a response's last bytes after it sees the
/// body end, in that same poll: marked at once, the work it wakes (deferred inits,
/// exporters) started on another worker beside that write and delayed it.
///
/// A task spawned from a worker thread goes to that worker's LIFO slot, which no
/// other worker steals, so it runs right after the current poll; on a
/// `current_thread` runtime it runs after the current task too. Outside a runtime
/// there is no later: it is marked at once. Over HTTP/2 the body is sent from a task
/// of the stream's own and the connection's task writes the frames, so there the mark
/// may run beside that write. On `multi_thread`, a connection served in `block_on`'s
/// own future (not a worker) spawns to the shared queue, where an idle worker may take
/// the mark at once, beside the write.
fn mark_after_this_poll() {
    // The server may ask `is_end_stream` many times before the mark runs.
    static SCHEDULED: AtomicBool = AtomicBool::new(false);
    if SCHEDULED.swap(true, Ordering::AcqRel) {
        return;
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        lifecycle::first_response_pending();
        crate::task::spawn(async {
            lifecycle::first_request_done();
        });
    } else {
        lifecycle::first_request_done();
    }
}

impl<B: Body> Body for MarkOnEnd<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        // Once marked (every response after the first), the frames pass as they are.
        if *this.marked {
            return this.inner.poll_frame(cx);
        }
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if let (Some(left), Some(Ok(f))) = (this.remaining.as_mut(), &frame)
            && let Some(data) = f.data_ref()
        {
            *left = left.saturating_sub(data.remaining() as u64);
            if *left == 0 {
                *this.remaining = None;
                mark(this.marked);
            }
        }
        match &frame {
            None => mark(this.marked),
            // Trailers are the last frame of a body, and a server that has sent them
            // polls no more; a body need not say it has ended (`is_end_stream` is a
            // hint), so they mark it on their own.
            Some(Ok(f)) if f.is_trailers() || this.inner.is_end_stream() => mark(this.marked),
            // A frame with more to come, or an error: not a completed response.
            Some(_) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        // An empty body may never be polled: the server asks this instead.
        if end && !self.marked && !lifecycle::is_first_response_done() {
            mark_after_this_poll();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

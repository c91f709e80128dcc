/*!
The handler wrapper: it sees what the handler returned, or that it panicked, or that
it was never called (an event that does not deserialise into its type), and tells the
invocation layer (for the `Errors` metric) and the invocation's span (status error,
with the message, and `error.type`).

`lambda_runtime` reports the error or panic to the Runtime API itself; this wrapper
passes both through untouched (a panic is resumed after it is noted). It must not
change what the handler returns.

A streamed answer ([`StreamResponse`]) is the
handler's work until its stream ends: `lambda_runtime` posts it from a task of its
own after the handler has returned. The stream is [`WatchedStream`]: polled with the
invocation's context current (its spans are the invocation's children), an error
item in it fails the invocation as a handler's error does, and the invocation has
returned only once it ends (so a stream stalled at the deadline is a timeout).
*/

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

#[cfg(feature = "tracing")]
use coldstart_exporters::trace::sampler;
use lambda_runtime::{FunctionResponse, IntoFunctionResponse, LambdaEvent, StreamResponse};
use tower_service::Service;

/// Whether the invocation in progress failed. One invocation runs at a time
/// (`lambda_runtime::Runtime::run`); the layer resets it when one starts.
static FAILED: AtomicBool = AtomicBool::new(false);
/// Whether the handler was called for the invocation in progress: lambda_runtime calls
/// it only when the event deserialises into its type, and otherwise posts the error
/// itself. Known only where the handler is [`instrument`]ed.
static CALLED: AtomicBool = AtomicBool::new(false);
/// Whether the instrumented handler of the invocation in progress has returned or
/// panicked (its answer, or the error, is being posted).
static RETURNED: AtomicBool = AtomicBool::new(false);
/// Whether a handler has been [`instrument`]ed, so that `CALLED` means something.
static INSTRUMENTED: AtomicBool = AtomicBool::new(false);
/// Which invocation the flags are of, counted by [`reset`]: a streamed answer still
/// posted after its invocation ended (the Runtime API answered early) sets nothing
/// for the next one.
static INVOCATION: AtomicU64 = AtomicU64::new(0);

/// Whether the invocation in progress is an HTTP event's, whose answer's status its
/// span takes ([`crate::status`]).
#[cfg(feature = "tracing")]
static HTTP: AtomicBool = AtomicBool::new(false);
/// Whether the invocation in progress answered its HTTP event with a 5xx: an error for
/// the dynamic sampler, as in the HTTP layer (Lambda's `Errors` count its own).
#[cfg(feature = "tracing")]
static SERVER_ERROR: AtomicBool = AtomicBool::new(false);

pub(crate) fn reset() {
    INVOCATION.fetch_add(1, Ordering::Relaxed);
    FAILED.store(false, Ordering::Relaxed);
    CALLED.store(false, Ordering::Relaxed);
    RETURNED.store(false, Ordering::Relaxed);
    #[cfg(feature = "tracing")]
    HTTP.store(false, Ordering::Relaxed);
    #[cfg(feature = "tracing")]
    SERVER_ERROR.store(false, Ordering::Relaxed);
}

/// Whether the invocation in progress answered its HTTP event with a 5xx.
#[cfg(feature = "tracing")]
pub(crate) fn answered_server_error() -> bool {
    SERVER_ERROR.load(Ordering::Relaxed)
}

/// Notes the status an HTTP event was answered with, if the answer gives one: on the
/// span, and as a server error for the sampler.
#[cfg(feature = "tracing")]
fn answered(status: Option<u16>) {
    if let Some(status) = status {
        SERVER_ERROR.store(status >= 500, Ordering::Relaxed);
        crate::status::record(status);
    }
}

/// Notes whether the invocation in progress is an HTTP event's (after [`reset`]).
#[cfg(feature = "tracing")]
pub(crate) fn answers_http(http: bool) {
    HTTP.store(http, Ordering::Relaxed);
}

/// Whether the instrumented handler of the invocation in progress has returned, so
/// that only the posting of its answer is left.
pub(crate) fn returned() -> bool {
    RETURNED.load(Ordering::Relaxed)
}

/// Whether the invocation in progress failed: the handler returned an error or
/// panicked, or it was never called (the event did not deserialise).
pub(crate) fn failed() -> bool {
    FAILED.load(Ordering::Relaxed) || not_called()
}

/// Whether an instrumented handler was not called for the invocation in progress.
pub(crate) fn not_called() -> bool {
    INSTRUMENTED.load(Ordering::Relaxed) && !CALLED.load(Ordering::Relaxed)
}

/// Notes that the invocation failed, and why: its span (the current one) gets
/// `message` as its status and `error_type` as its `error.type`; the flag that counts
/// it in the EMF record is set where `flag` (not for an invocation already ended).
fn fail(message: &str, error_type: &str, flag: bool) {
    if flag {
        FAILED.store(true, Ordering::Relaxed);
    }
    #[cfg(feature = "tracing")]
    {
        use opentelemetry::KeyValue;
        use opentelemetry::trace::{Status, TraceContextExt};
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        span.set_attribute(KeyValue::new("error.type", error_type.to_owned()));
        span.set_status(Status::error(status_text(message)));
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (message, error_type);
}

/// A handler error's type: the `error_type` of a handler's own `Diagnostic`, else the
/// error's Rust type, which is what the Runtime API is told too unless the error's
/// `Into<Diagnostic>` names another (lambda_runtime 1.5 tells the type of a reference
/// to it, with a leading `&` that is no part of the error's type).
fn error_type<E: 'static>(e: &E) -> String {
    match (e as &dyn std::any::Any).downcast_ref::<lambda_runtime::Diagnostic>() {
        Some(diagnostic) => diagnostic.error_type.clone(),
        None => std::any::type_name::<E>().to_owned(),
    }
}

/// The `error.type` of a handler that panicked, as the HTTP layer's. (The Runtime API
/// is told the type of the panic's payload, the same for every panic.)
const PANIC: &str = "panic";

/// The most characters of a handler's error that its span's status keeps: an error
/// that prints a whole payload could make the export request larger than a collector
/// takes (4 MiB over gRPC by default), and it refuses every span in it.
#[cfg(feature = "tracing")]
const MAX_STATUS: usize = 4096;

/// `message`, cut to [`MAX_STATUS`] characters, with `…` where it was cut.
#[cfg(feature = "tracing")]
fn status_text(message: &str) -> String {
    match message.char_indices().nth(MAX_STATUS) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_owned(),
    }
}

/// Wraps a handler so that its errors and panics are counted and traced; what
/// [`run`](crate::run) does to the handler it is given. Use it with
/// [`InvocationLayer`](crate::InvocationLayer) when building a
/// `lambda_runtime::Runtime` yourself.
///
/// ```
/// use coldstart_lambda::{LambdaEvent, instrument, service_fn};
/// let handler = instrument(service_fn(|e: LambdaEvent<String>| async move {
///     Ok::<_, coldstart_lambda::Error>(e.payload)
/// }));
/// # let _ = handler;
/// ```
pub fn instrument<S>(handler: S) -> Instrumented<S> {
    INSTRUMENTED.store(true, Ordering::Relaxed);
    Instrumented { inner: handler }
}

/// A handler wrapped by [`instrument`].
#[derive(Debug, Clone)]
pub struct Instrumented<S> {
    inner: S,
}

impl<S, A> Service<LambdaEvent<A>> for Instrumented<S>
where
    S: Service<LambdaEvent<A>>,
    S::Error: fmt::Debug + 'static,
{
    type Response = Watched<S::Response>;
    type Error = S::Error;
    type Future = InstrumentedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, event: LambdaEvent<A>) -> Self::Future {
        CALLED.store(true, Ordering::Relaxed);
        let inner = &mut self.inner;
        match catch_unwind(AssertUnwindSafe(|| inner.call(event))) {
            Ok(future) => InstrumentedFuture { inner: future },
            Err(panic) => {
                RETURNED.store(true, Ordering::Relaxed);
                fail(&panic_message(&*panic), PANIC, true);
                resume_unwind(panic)
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of an [`Instrumented`] handler.
    #[derive(Debug)]
    pub struct InstrumentedFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, R, E> Future for InstrumentedFuture<F>
where
    F: Future<Output = Result<R, E>>,
    E: fmt::Debug + 'static,
{
    type Output = Result<Watched<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            // An answer has returned once lambda_runtime takes it (`into_response`):
            // a buffered one then, a streamed one when its stream ends.
            Ok(Poll::Ready(Ok(answer))) => Poll::Ready(Ok(Watched(answer))),
            Ok(Poll::Ready(Err(e))) => {
                RETURNED.store(true, Ordering::Relaxed);
                fail(&format!("{e:?}"), &error_type(&e), true);
                Poll::Ready(Err(e))
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => {
                // Done too: a panic near the deadline, its error still being posted
                // when the timeout notice comes, is a panic, not a timeout.
                RETURNED.store(true, Ordering::Relaxed);
                fail(&panic_message(&*panic), PANIC, true);
                resume_unwind(panic)
            }
        }
    }
}

/// A handler's answer, as [`Instrumented`] hands it to `lambda_runtime`: the same
/// answer, its stream (if streamed) a [`WatchedStream`].
#[derive(Debug)]
pub struct Watched<R>(pub R);

impl<R, B, S> IntoFunctionResponse<B, WatchedStream<S>> for Watched<R>
where
    R: IntoFunctionResponse<B, S>,
    B: serde::Serialize,
{
    fn into_response(self) -> FunctionResponse<B, WatchedStream<S>> {
        // An HTTP event's answer: its status on the span, which is current here.
        #[cfg(feature = "tracing")]
        let http = HTTP.load(Ordering::Relaxed);
        match self.0.into_response() {
            FunctionResponse::BufferedResponse(body) => {
                RETURNED.store(true, Ordering::Relaxed);
                // Looked for only where something reads it: the span, or the sampler.
                #[cfg(feature = "tracing")]
                if http && (crate::status::recording() || sampler::in_use()) {
                    answered(crate::status::of(&body));
                }
                FunctionResponse::BufferedResponse(body)
            }
            FunctionResponse::StreamingResponse(response) => {
                #[cfg(feature = "tracing")]
                if http {
                    answered(Some(response.metadata_prelude.status_code.as_u16()));
                }
                FunctionResponse::StreamingResponse(StreamResponse {
                    metadata_prelude: response.metadata_prelude,
                    stream: WatchedStream {
                        inner: response.stream,
                        invocation: INVOCATION.load(Ordering::Relaxed),
                        // Taken here, where the invocation's context is current.
                        #[cfg(feature = "tracing")]
                        cx: opentelemetry::Context::current(),
                    },
                })
            }
        }
    }
}

/// A streamed answer's stream, watched (see the module docs).
#[derive(Debug)]
pub struct WatchedStream<S> {
    inner: S,
    /// The invocation it answers ([`INVOCATION`] when it was taken).
    invocation: u64,
    #[cfg(feature = "tracing")]
    cx: opentelemetry::Context,
}

impl<S, D, E> futures_core::Stream for WatchedStream<S>
where
    S: futures_core::Stream<Item = Result<D, E>> + Unpin,
    E: fmt::Debug,
{
    type Item = Result<D, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        #[cfg(feature = "tracing")]
        let _current = this.cx.clone().attach();
        let inner = Pin::new(&mut this.inner);
        let polled = catch_unwind(AssertUnwindSafe(|| inner.poll_next(cx)));
        // Still its invocation's once polled: the flags are then its own to set.
        let current = INVOCATION.load(Ordering::Relaxed) == this.invocation;
        match polled {
            Ok(Poll::Ready(Some(Err(e)))) => {
                // lambda_runtime sends it as the stream's error trailer and goes on.
                // (The span is the stream's own invocation's, current here.)
                fail(&format!("{e:?}"), std::any::type_name::<E>(), current);
                Poll::Ready(Some(Err(e)))
            }
            Ok(Poll::Ready(None)) => {
                if current {
                    RETURNED.store(true, Ordering::Relaxed);
                }
                Poll::Ready(None)
            }
            Ok(polled) => polled,
            Err(panic) => {
                if current {
                    RETURNED.store(true, Ordering::Relaxed);
                }
                fail(&panic_message(&*panic), PANIC, current);
                resume_unwind(panic)
            }
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

#[cfg(all(test, feature = "tracing"))]
mod tests {
    use super::{MAX_STATUS, status_text};

    #[test]
    fn a_long_error_is_cut_for_the_status() {
        assert_eq!(status_text("db down"), "db down");
        let long = "é".repeat(MAX_STATUS * 3);
        let cut = status_text(&long);
        assert_eq!(cut.chars().count(), MAX_STATUS + 1);
        assert!(cut.ends_with("é…"), "{}", &cut[cut.len() - 8..]);
        let exact = "x".repeat(MAX_STATUS);
        assert_eq!(status_text(&exact), exact);
    }
}

#[cfg(test)]
mod outcomes {
    use super::*;
    use lambda_runtime::{LambdaEvent, service_fn};

    /// A handler that panics is done with the invocation, as one that returns: the
    /// timeout notice that comes while its error is posted must not record a timeout.
    #[tokio::test]
    async fn a_handler_that_panics_has_returned_its_answer() {
        let _turn = TURN.lock().await;
        reset();
        let mut handler = instrument(service_fn(|_: LambdaEvent<String>| async {
            if true {
                panic!("asked to panic");
            }
            Ok::<String, String>(String::new())
        }));
        let event = LambdaEvent::new(String::new(), lambda_runtime::Context::default());
        let future = handler.call(event);
        assert!(!returned(), "not yet polled");
        let joined = tokio::spawn(future).await;
        assert!(joined.unwrap_err().is_panic());
        assert!(returned());
        assert!(failed());

        // A panic before the handler has a future: the same.
        reset();
        let mut handler = instrument(service_fn(
            |_: LambdaEvent<String>| -> std::future::Ready<Result<String, String>> {
                panic!("asked to panic in call")
            },
        ));
        let event = LambdaEvent::new(String::new(), lambda_runtime::Context::default());
        let called = std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(event)));
        assert!(called.is_err());
        assert!(returned());
        assert!(failed());
    }
}

#[cfg(test)]
mod streamed {
    use super::*;
    use lambda_runtime::{LambdaEvent, service_fn};
    use std::collections::VecDeque;

    /// A stream of the items it was given, each ready at once.
    struct Items(VecDeque<Result<&'static str, String>>);

    impl futures_core::Stream for Items {
        type Item = Result<&'static str, String>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    /// The stream a handler answering `items` hands to lambda_runtime, after the
    /// handler has returned.
    async fn streamed(items: Vec<Result<&'static str, String>>) -> WatchedStream<Items> {
        let mut handler = instrument(service_fn(move |_: LambdaEvent<String>| {
            let items = Items(items.clone().into());
            async move { Ok::<_, String>(StreamResponse::from(items)) }
        }));
        let event = LambdaEvent::new(String::new(), lambda_runtime::Context::default());
        stream_of(handler.call(event).await.unwrap())
    }

    /// The stream lambda_runtime takes from a streamed `answer`.
    fn stream_of<S>(answer: Watched<StreamResponse<S>>) -> WatchedStream<S>
    where
        StreamResponse<S>: IntoFunctionResponse<(), S>,
    {
        match IntoFunctionResponse::<(), WatchedStream<S>>::into_response(answer) {
            FunctionResponse::StreamingResponse(response) => response.stream,
            FunctionResponse::BufferedResponse(()) => panic!("streamed"),
        }
    }

    /// Polls `stream` to its end: its items.
    fn drain(stream: &mut WatchedStream<Items>) -> usize {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut n = 0;
        while let Poll::Ready(Some(_)) = Pin::new(&mut *stream).poll_next(&mut cx) {
            n += 1;
        }
        n
    }

    use futures_core::Stream as _;

    /// A streamed answer is the handler's work until its stream ends: it has not
    /// returned before (a stream stalled at the deadline is a timeout), and an error
    /// item in it fails the invocation. Both were set as the handler returned.
    #[tokio::test]
    async fn a_streamed_answer_returns_at_its_end_and_an_error_in_it_fails() {
        let _turn = TURN.lock().await;
        reset();
        let mut stream = streamed(vec![Ok("a"), Err("broke".to_owned()), Ok("b")]).await;
        assert!(!returned(), "the stream is still to be posted");
        assert!(!failed());
        assert_eq!(drain(&mut stream), 3, "every item passed on, the error too");
        assert!(returned());
        assert!(failed(), "the error item fails the invocation");

        reset();
        let mut stream = streamed(vec![Ok("a"), Ok("b")]).await;
        assert!(!returned());
        assert_eq!(drain(&mut stream), 2);
        assert!(returned());
        assert!(!failed());
    }

    /// A stream still posted after its invocation ended (the Runtime API answered
    /// early) sets nothing for the next invocation: its end would have hidden the
    /// next one's timeout, its error counted the next one as failed.
    #[tokio::test]
    async fn a_stream_outliving_its_invocation_sets_nothing_for_the_next() {
        let _turn = TURN.lock().await;
        reset();
        let mut stream = streamed(vec![Err("late".to_owned())]).await;
        // The next invocation begins, and its handler is called.
        reset();
        CALLED.store(true, Ordering::Relaxed);
        assert_eq!(drain(&mut stream), 1);
        assert!(!returned(), "the next invocation has not returned");
        assert!(!failed(), "nor failed");
    }

    /// The stream is polled, on lambda_runtime's task of its own, with the context
    /// current where lambda_runtime took the answer: the invocation's, so that spans
    /// made in it are the invocation's children.
    #[cfg(feature = "tracing")]
    #[tokio::test]
    async fn a_stream_is_polled_in_its_invocations_context() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
        use std::sync::{Arc, Mutex};
        /// Ends at once, noting the trace current when it is polled.
        struct Sees(Arc<Mutex<Option<TraceId>>>);
        impl futures_core::Stream for Sees {
            type Item = Result<&'static str, String>;
            fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                let cx = opentelemetry::Context::current();
                *self.0.lock().unwrap() = Some(cx.span().span_context().trace_id());
                Poll::Ready(None)
            }
        }
        let _turn = TURN.lock().await;
        reset();
        let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let invocation = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            trace,
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            Default::default(),
        ));
        let seen = Arc::new(Mutex::new(None));
        let sees = seen.clone();
        let mut handler = instrument(service_fn(move |_: LambdaEvent<String>| {
            let stream = Sees(sees.clone());
            async move { Ok::<_, String>(StreamResponse::from(stream)) }
        }));
        let event = LambdaEvent::new(String::new(), lambda_runtime::Context::default());
        let mut stream = {
            let _current = invocation.attach();
            stream_of(handler.call(event).await.unwrap())
        };
        // Polled where no context is current, as on lambda_runtime's task.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut stream).poll_next(&mut cx).is_ready());
        assert_eq!(*seen.lock().unwrap(), Some(trace));
    }

    /// A buffered answer has returned once lambda_runtime takes it.
    #[tokio::test]
    async fn a_buffered_answer_returns_when_taken() {
        let _turn = TURN.lock().await;
        reset();
        let mut handler = instrument(service_fn(|e: LambdaEvent<String>| async move {
            Ok::<String, String>(e.payload)
        }));
        let event = LambdaEvent::new("x".to_owned(), lambda_runtime::Context::default());
        let answer = handler.call(event).await.unwrap();
        let taken = IntoFunctionResponse::<String, _>::into_response(answer);
        assert!(matches!(taken, FunctionResponse::BufferedResponse(ref x) if x == "x"));
        assert!(returned());
        assert!(!failed());
    }
}

/// The per-invocation flags are the process's: the tests that set them take turns.
/// (No other test of this crate touches them.)
#[cfg(test)]
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[cfg(test)]
mod error_types {
    use super::error_type;

    #[test]
    fn a_diagnostic_names_its_own_type_and_any_other_error_its_rust_type() {
        let diagnostic = lambda_runtime::Diagnostic {
            error_type: "TableMissing".into(),
            error_message: "no table".into(),
        };
        assert_eq!(error_type(&diagnostic), "TableMissing");
        assert_eq!(
            error_type(&String::from("no table")),
            "alloc::string::String"
        );
        // What the Runtime API is told of the same error: lambda_runtime 1.5 names the
        // type of a reference to it.
        let told = lambda_runtime::Diagnostic::from(String::from("no table"));
        assert_eq!(told.error_type, "&alloc::string::String");
    }
}

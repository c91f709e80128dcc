//! `HttpTelemetryLayer` on a real tonic server: a gRPC call answers HTTP 200 whatever
//! its outcome, and the layer reads the call's code from `grpc-status`, in the
//! answer's headers (tonic's answer to a handler's `Err(Status)`) or in the trailers
//! after its message (an `OK`). The span gets `rpc.grpc.status_code`, and an error
//! status for the codes the OpenTelemetry conventions count as server errors. The service is the OTLP trace service from the
//! official protobuf definitions, called by tonic's client. One test: telemetry is
//! global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod telemetry;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use coldstart_bootstrap::Settings;
use coldstart_exporters::http::HttpTelemetryLayer;
use coldstart_exporters::plugin::Plugin;
use http_body::Frame;
use http_body_util::BodyExt as _;
use hyper::body::Bytes;
use opentelemetry::Value;
use opentelemetry::trace::Status;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use opentelemetry_sdk::trace::SpanData;
use tonic::transport::server::TcpIncoming;
use tower_layer::Layer as _;
use tower_service::Service;

/// Each server span's `rpc.grpc.status_code` (if any), whether its status is an error,
/// and its `error.type` (if any).
type Seen = (Option<i64>, bool, Option<String>);
static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

struct Witness;

impl Plugin for Witness {
    fn name(&self) -> &str {
        "witness"
    }
    fn on_span_end(&self, span: &SpanData) {
        let code = span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "rpc.grpc.status_code")
            .map(|kv| match kv.value {
                Value::I64(code) => code,
                ref other => panic!("rpc.grpc.status_code is {other:?}"),
            });
        let error = matches!(span.status, Status::Error { .. });
        let error_type = span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "error.type")
            .map(|kv| kv.value.to_string());
        SEEN.lock().unwrap().push((code, error, error_type));
    }
}

coldstart_exporters::plugin!(WITNESS: Witness = Witness, priority = 0);

/// Answers with the gRPC code given as the request's number of resource spans.
struct Collector;

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        match request.into_inner().resource_spans.len() {
            0 => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
            code => Err(tonic::Status::new(
                tonic::Code::from(i32::try_from(code).unwrap()),
                "as asked",
            )),
        }
    }
}

/// A gRPC service by hand: a message, then `UNAVAILABLE` in the trailers, as a
/// streaming call that fails after its first message answers (tonic answers a unary
/// call's error in the headers); or, with `true`, a message and then a body error.
struct FailsAfterAMessage(bool);

impl Service<http::Request<()>> for FailsAfterAMessage {
    type Response = http::Response<Frames>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("14"));
        let last = match self.0 {
            false => Ok(Frame::trailers(trailers)),
            true => Err("the stream was reset"),
        };
        let frames = Frames(VecDeque::from([
            Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
            last,
        ]));
        let response = http::Response::builder()
            .header("content-type", "application/grpc")
            .body(frames)
            .unwrap();
        std::future::ready(Ok(response))
    }
}

/// A service that never answers.
struct NeverAnswers;

impl Service<http::Request<()>> for NeverAnswers {
    type Response = http::Response<Frames>;
    type Error = Infallible;
    type Future = std::future::Pending<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::pending()
    }
}

/// Polls `future` once, with a waker that does nothing.
fn futures_poll_once<F: std::future::Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    Pin::new(future).poll(&mut cx)
}

/// A body of the given frames and errors.
struct Frames(VecDeque<Result<Frame<Bytes>, &'static str>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        Poll::Ready(self.0.pop_front())
    }
}

#[test]
fn grpc_errors_answered_as_http_200_reach_the_span() {
    let telemetry = telemetry::installed(vec![
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
    ]);

    coldstart_runtime::block_on(&Settings::NONE, async move {
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .layer(HttpTelemetryLayer::new())
                .add_service(TraceServiceServer::new(Collector))
                .serve_with_incoming(incoming),
        );
        let mut client = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        // OK (its code comes in the trailers), NOT_FOUND (the caller's fault),
        // INTERNAL and UNAVAILABLE (the server's; in the headers).
        for code in [0, 5, 13, 14] {
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans::default(); code],
            };
            let answer = client.export(request).await;
            assert_eq!(
                answer.map_or_else(|s| s.code(), |_| tonic::Code::Ok),
                tonic::Code::from(i32::try_from(code).unwrap())
            );
        }

        // The code in the trailers ends the span when they pass; a body dropped
        // before them ends it without a code; one that fails, as an error.
        let mut by_hand = HttpTelemetryLayer::new().layer(FailsAfterAMessage(false));
        let response = by_hand.call(http::Request::new(())).await.unwrap();
        response.into_body().collect().await.unwrap();
        let response = by_hand.call(http::Request::new(())).await.unwrap();
        drop(response);
        let mut failing = HttpTelemetryLayer::new().layer(FailsAfterAMessage(true));
        let response = failing.call(http::Request::new(())).await.unwrap();
        assert!(response.into_body().collect().await.is_err());
        // A call dropped before its service answered: cancelled.
        let mut never = HttpTelemetryLayer::new().layer(NeverAnswers);
        let mut call = never.call(http::Request::new(()));
        assert!(futures_poll_once(&mut call).is_pending());
        drop(call);

        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        telemetry::until(|| SEEN.lock().unwrap().len() >= 8).await;
    });
    let mut seen = SEEN.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            (None, false, None),
            (None, true, Some("_OTHER".to_owned())),
            (None, true, Some("cancelled".to_owned())),
            (Some(0), false, None),
            (Some(5), false, None),
            (Some(13), true, Some("INTERNAL".to_owned())),
            (Some(14), true, Some("UNAVAILABLE".to_owned())),
            (Some(14), true, Some("UNAVAILABLE".to_owned()))
        ]
    );
}

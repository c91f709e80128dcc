//! `HttpTelemetryLayer` on a real tonic server: a gRPC call answers HTTP 200 whatever
//! its outcome, and the layer reads the call's code from `grpc-status` when the answer
//! carries it in its headers (tonic's answer to a handler's `Err(Status)`). The span
//! gets `rpc.grpc.status_code`, and an error status for the codes the OpenTelemetry
//! conventions count as server errors. The service is the OTLP trace service from the
//! official protobuf definitions, called by tonic's client. One test: telemetry is
//! global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::sync::Mutex;
use std::time::{Duration, Instant};

use coldstart_bootstrap::{Env, Settings};
use coldstart_exporters::config::Config;
use coldstart_exporters::http::HttpTelemetryLayer;
use coldstart_exporters::plugin::Plugin;
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

/// Each server span's `rpc.grpc.status_code` (if any) and whether its status is an error.
static SEEN: Mutex<Vec<(Option<i64>, bool)>> = Mutex::new(Vec::new());

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
        SEEN.lock().unwrap().push((code, error));
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

#[test]
fn grpc_errors_answered_as_http_200_reach_the_span() {
    let env = Env::fixed([
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
    ]);
    let (config, errors) = Config::from(&env);
    assert!(errors.is_empty(), "{errors:?}");
    let telemetry = coldstart_exporters::install_with(config, None);

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
        // INTERNAL and UNAVAILABLE (the server's).
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

        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        let deadline = Instant::now() + Duration::from_secs(15);
        while SEEN.lock().unwrap().len() < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut seen = SEEN.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            (None, false),
            (Some(5), false),
            (Some(13), true),
            (Some(14), true)
        ]
    );
}

//! The tower layer on a tonic server, over HTTP/2, as users add it
//! (`Server::builder().layer(..)`): a gRPC response ends with a trailers frame, after
//! which the server polls the body no more, and the first response is marked then.
//! tonic's body says it has ended before it yields its trailers, so this checks the
//! layer in place; `first_response_http2.rs` checks a body that never says so.
//! The service is the OTLP trace service from the official protobuf definitions
//! (`opentelemetry-proto`), answered by tonic and called by tonic's client. One test:
//! the lifecycle is process-wide.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::first_response::FirstResponseLayer;
use coldstart_runtime::lifecycle::{self, Trigger};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::transport::server::TcpIncoming;

struct Collector;

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        _: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 0,
                error_message: "answered".into(),
            }),
        }))
    }
}

#[test]
fn a_tonic_server_marks_the_first_response_after_its_trailers() {
    coldstart_runtime::block_on(&Settings::NONE, async {
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .layer(FirstResponseLayer::new())
                .add_service(TraceServiceServer::new(Collector))
                .serve_with_incoming(incoming),
        );
        assert!(!lifecycle::is_first_response_done());

        let mut client = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let answer = client
            .export(ExportTraceServiceRequest::default())
            .await
            .unwrap();
        assert_eq!(
            answer.into_inner().partial_success.unwrap().error_message,
            "answered"
        );

        tokio::time::timeout(Duration::from_secs(5), lifecycle::first_response())
            .await
            .expect("the first gRPC response was never marked done");
        assert_eq!(lifecycle::trigger(), Some(Trigger::Response));
    });
}

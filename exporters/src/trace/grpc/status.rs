//! What a failed call's status says: whether the call got an answer, whether it is
//! sent again at once or tried again, after how long the collector asked, and why it
//! failed, in one line.

use std::time::Duration;

use super::MAX_ASKED_DELAY;

/// Whether `status` may be the transport's, not the collector's: the call then got
/// no answer, and the channel is not trusted again.
pub(super) fn unanswered(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled
    )
}

/// Whether `status` is the transport's failure before any answer came: tonic keeps
/// the transport's error as the source of the status it makes (a status read from an
/// answer has none), and the answer's headers as its metadata once they came (a call
/// whose answer was cut short after them may have been taken: not sent again).
/// `CANCELLED` only as hyper's for a request that never reached a connection (one
/// closed while idle), not as a timeout's.
pub(super) fn transport_failed(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    let Some(source) = status.source() else {
        return false;
    };
    if !status.metadata().is_empty() {
        return false;
    }
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown => true,
        tonic::Code::Cancelled => {
            let mut cause = Some(source);
            while let Some(e) = cause {
                if e.downcast_ref::<hyper::Error>()
                    .is_some_and(hyper::Error::is_canceled)
                {
                    return true;
                }
                cause = e.source();
            }
            false
        }
        _ => false,
    }
}

/// Whether a failed call is tried again: the codes the OTLP specification calls
/// retryable, `RESOURCE_EXHAUSTED` only when the collector said when to retry
/// (`RetryInfo`); and an `UNKNOWN` tonic's client made of a transport failure during
/// the call (a connection reset or closed mid-call), as it does without its `server`
/// feature: a collector's own `UNKNOWN` carries no error source. Such a call is tried
/// again as the OTLP/HTTP client tries a network failure again: at worst the
/// collector took the batch and gets it twice. A program that also serves gRPC with
/// tonic turns its `server` feature on, and tonic then labels a reset with an HTTP/2
/// reason `INTERNAL` (not tried again) or `UNAVAILABLE` (tried again); the tests run
/// that way, and the dropped connection they make carries no reason, so it is still
/// `UNKNOWN` there.
pub(super) fn retryable(status: &tonic::Status, retry_info: bool) -> bool {
    use tonic::Code;
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_info,
        Code::Unknown => std::error::Error::source(status).is_some(),
        _ => false,
    }
}

/// The delay a collector asked for in a failed call's `RetryInfo`, at most
/// [`MAX_ASKED_DELAY`]; `None` when it sent none (or nothing readable).
pub(super) fn asked_delay(status: &tonic::Status) -> Option<Duration> {
    use prost::Message as _;
    let details = details::Status::decode(status.details()).ok()?;
    let info = details
        .details
        .iter()
        .find(|any| any.type_url.ends_with("/google.rpc.RetryInfo"))?;
    let delay = details::RetryInfo::decode(info.value.as_slice())
        .ok()?
        .retry_delay?;
    let seconds = u64::try_from(delay.seconds).ok()?;
    let nanos = u32::try_from(delay.nanos).ok()?.min(999_999_999);
    Some(Duration::new(seconds, nanos).min(MAX_ASKED_DELAY))
}

/// The parts of `google.rpc.Status` and `google.rpc.RetryInfo` (googleapis'
/// `google/rpc/status.proto` and `error_details.proto`) that say when to retry: the
/// field numbers are theirs, the fields not read are left out.
mod details {
    /// `google.rpc.Status`: only its details.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Status {
        #[prost(message, repeated, tag = "3")]
        pub(super) details: Vec<Any>,
    }

    /// `google.protobuf.Any`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Any {
        #[prost(string, tag = "1")]
        pub(super) type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub(super) value: Vec<u8>,
    }

    /// `google.rpc.RetryInfo`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub(super) retry_delay: Option<ProtoDuration>,
    }

    /// `google.protobuf.Duration`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ProtoDuration {
        #[prost(int64, tag = "1")]
        pub(super) seconds: i64,
        #[prost(int32, tag = "2")]
        pub(super) nanos: i32,
    }
}

/// Why an export failed, in one line: the code, and for a failure of tonic's own
/// transport (no connection, no name) its causes. The collector's own message is left
/// out, as opentelemetry-otlp leaves it out: it may echo a credential back.
pub(super) fn failure(status: &tonic::Status) -> String {
    let mut line = format!("gRPC export failed with code {:?}", status.code());
    let mut cause = std::error::Error::source(status);
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    crate::problem::one_line(&line, 300)
}

//! The collector's answer before tonic reads it: a `grpc-status-details-bin` tonic
//! cannot decode taken out (tonic panics on one), and a message larger than tonic
//! reads passed on as an empty one (it refused it, and the batch went four times).

use bytes::Bytes;
use tonic::transport::Channel;

#[cfg(fuzzing)]
use super::{MAX_ASKED_DELAY, status::asked_delay};

/// The channel, with a `grpc-status-details-bin` in an answer's headers or trailers
/// that tonic cannot decode taken out before tonic reads it: tonic panics on one
/// (grpc/grpc-rust#2618), which a program built with `panic = "abort"` does not
/// survive, and which any collector or proxy could send. The status keeps its code
/// and message; only its details (a `RetryInfo`) go.
#[derive(Debug, Clone)]
pub(super) struct Checked(pub(super) Channel);

impl tower_service::Service<http::Request<tonic::body::Body>> for Checked {
    type Response = http::Response<CheckedBody>;
    type Error = tonic::transport::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let answer = self.0.call(request);
        Box::pin(async move {
            let mut answer = answer.await?;
            drop_undecodable_details(answer.headers_mut());
            Ok(answer.map(CheckedBody::new))
        })
    }
}

/// The largest answer message tonic is told to read (its own default, set so the two
/// cannot part): [`CheckedBody`] takes a larger one as an empty answer.
pub(super) const ANSWER_LIMIT: usize = 4 << 20;

pin_project_lite::pin_project! {
    /// An answer's body, its trailers checked as [`Checked`] checks the headers. A
    /// message the collector sent that is larger than [`ANSWER_LIMIT`] reaches tonic
    /// as an empty one: tonic would refuse it with an `OUT_OF_RANGE` of its own, which
    /// the export cannot tell from a collector's refusal of its request (a tonic
    /// collector's over its own limit reads the same), and tried again, the batch the
    /// collector took went up to four times and was counted as failed. As over HTTP,
    /// an answer that came is the answer. A refusal sends no message, so it is left as
    /// it is.
    pub(super) struct CheckedBody {
        #[pin]
        body: tonic::body::Body,
        // The message's first bytes (its flag and length) until all five came.
        head: Vec<u8>,
        read: Read,
    }
}

/// How far [`CheckedBody`] has read the answer's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// Its five-byte prefix is not all here yet.
    Head,
    /// Passed on as it comes, this many bytes of it still to come.
    Through(usize),
    /// Passed on whole, or too large and an empty message went on in its place: what
    /// follows is dropped. A unary answer has one message; a second one larger than
    /// tonic reads met the same `OUT_OF_RANGE` as it read the trailers.
    Dropped,
}

/// The most a deflate stream inflates (1032 to 1): a compressed message no longer
/// than [`ANSWER_LIMIT`] over this cannot inflate past what tonic reads, which it
/// refuses with a `RESOURCE_EXHAUSTED` of its own, a batch the collector took then
/// counted as failed. A longer one goes on as an empty message, as a message too
/// large does (an export's answer is a few bytes, its partial success included).
const INFLATES_AT_MOST: usize = 1032;

impl CheckedBody {
    fn new(body: tonic::body::Body) -> CheckedBody {
        CheckedBody {
            body,
            head: Vec::new(),
            read: Read::Head,
        }
    }
}

/// What of the message's `data` goes on to tonic, given what was read before.
pub(super) fn pass_on(head: &mut Vec<u8>, read: &mut Read, mut data: Bytes) -> Bytes {
    match *read {
        Read::Through(left) => {
            let passed = data.split_to(left.min(data.len()));
            *read = match left - passed.len() {
                0 => Read::Dropped,
                left => Read::Through(left),
            };
            passed
        }
        Read::Dropped => Bytes::new(),
        Read::Head => {
            let take = (5 - head.len()).min(data.len());
            head.extend_from_slice(&data[..take]);
            if head.len() < 5 {
                return Bytes::new();
            }
            let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let compressed = head[0] & 1 == 1;
            if length > ANSWER_LIMIT || compressed && length > ANSWER_LIMIT / INFLATES_AT_MOST {
                *read = Read::Dropped;
                return Bytes::from_static(&[0, 0, 0, 0, 0]);
            }
            let mut whole = std::mem::take(head);
            *read = Read::Through(length);
            whole.extend_from_slice(&pass_on(head, read, data.split_off(take)));
            Bytes::from(whole)
        }
    }
}

impl http_body::Body for CheckedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let this = self.project();
        let mut polled = this.body.poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &mut polled {
            if let Some(trailers) = frame.trailers_mut() {
                drop_undecodable_details(trailers);
            } else if let Some(data) = frame.data_mut() {
                *data = pass_on(this.head, this.read, std::mem::take(data));
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A collector's answer as read before tonic (see [`crate::fuzz::grpc_answer`]): the
/// message's data in `frames`, then trailers of a failed call whose
/// `grpc-status-details-bin` holds `details`.
#[cfg(fuzzing)]
pub(crate) fn fuzz_answer(frames: &[&[u8]], details: &[u8]) {
    let (mut head, mut read) = (Vec::new(), Read::Head);
    let mut passed = Vec::new();
    for frame in frames {
        passed.extend_from_slice(&pass_on(
            &mut head,
            &mut read,
            Bytes::copy_from_slice(frame),
        ));
    }
    // The first message as it was sent (what follows it dropped), or for one longer
    // than tonic reads, or compressed and longer than can be inflated within that,
    // the head of an empty one; nothing until the five bytes of the head have come.
    let sent = frames.concat();
    match sent.get(..5) {
        None => assert!(passed.is_empty(), "{passed:?}"),
        Some(head) => {
            let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let compressed = head[0] & 1 == 1;
            if length > ANSWER_LIMIT || compressed && length > ANSWER_LIMIT / INFLATES_AT_MOST {
                assert_eq!(passed, [0, 0, 0, 0, 0]);
            } else {
                assert_eq!(passed, sent[..sent.len().min(5 + length)]);
            }
        }
    }
    if let Ok(value) = http::HeaderValue::from_bytes(details) {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("14"));
        trailers.insert("grpc-status-details-bin", value);
        drop_undecodable_details(&mut trailers);
        // tonic panics on details it cannot decode: none is left for it.
        let status = tonic::Status::from_header_map(&trailers).expect("a status");
        if let Some(delay) = asked_delay(&status) {
            assert!(delay <= MAX_ASKED_DELAY, "{delay:?}");
        }
    }
}

/// Takes out a `grpc-status-details-bin` the decoder tonic reads it with refuses.
fn drop_undecodable_details(headers: &mut http::HeaderMap) {
    use base64::Engine as _;
    // tonic's own (`util::base64::STANDARD`, tonic 0.14).
    const TONICS: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    const DETAILS: &str = "grpc-status-details-bin";
    if headers
        .get(DETAILS)
        .is_some_and(|v| TONICS.decode(v.as_bytes()).is_err())
    {
        headers.remove(DETAILS);
    }
}

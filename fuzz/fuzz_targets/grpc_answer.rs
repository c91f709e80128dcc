//! A collector's answer to an OTLP/gRPC export, as coldstart reads it before tonic:
//! the message in any frames goes on as sent (or, past 4 MiB, as an empty one), and
//! any `grpc-status-details-bin` leaves tonic a status it reads without a panic.
#![no_main]

use arbitrary::Arbitrary;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    frames: Vec<&'a [u8]>,
    details: &'a [u8],
}

libfuzzer_sys::fuzz_target!(|input: Input<'_>| {
    coldstart_exporters::fuzz::grpc_answer(&input.frames, input.details);
});

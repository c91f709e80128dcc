//! A collector's answer to an OTLP/HTTP export: any body is read for its partial
//! success without a panic, and any `Retry-After` value asks for at most 30 s.
#![no_main]

use arbitrary::Arbitrary;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    body: &'a [u8],
    retry_after: &'a [u8],
}

libfuzzer_sys::fuzz_target!(|input: Input<'_>| {
    coldstart_exporters::fuzz::otlp_answer(input.body, input.retry_after);
});

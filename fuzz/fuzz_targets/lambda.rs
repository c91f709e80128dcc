//! What the Lambda integration parses: the X-Ray header, the Runtime API address, ARNs,
//! `/proc/self/schedstat`, Extensions API response heads, the function's variables and
//! an event's shape (its trigger).
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| coldstart_lambda::fuzz::lambda_text(text));

//! The probe's parser of `/proc/self/mountinfo` on any text.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| coldstart_bootstrap::fuzz::mountinfo(text));

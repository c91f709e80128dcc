//! The process metrics' parsers of `/proc/self/stat` and `/proc/stat` on any text.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| coldstart_exporters::fuzz::process_files(text));

//! The probe's parser of `/proc/self/cgroup` on any text.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| coldstart_bootstrap::fuzz::proc_cgroup(text));

//! The probe's parser of `cpu.max`, `cpu.cfs_*`, `memory.*` and `memory.stat` on any text.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| coldstart_bootstrap::fuzz::cgroup_files(text));

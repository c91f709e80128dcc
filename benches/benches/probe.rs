//! The probe side by side with `std::thread::available_parallelism()`, which it must
//! undercut (the probe reads CPU, memory and platform; std reads only CPU).
//!
//! `cargo bench -p coldstart-benches --bench probe`

use coldstart_bootstrap::{Env, Plan, Probe, Settings};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn probe(c: &mut Criterion) {
    let mut group = c.benchmark_group("budget");
    group.bench_function("std::thread::available_parallelism", |b| {
        b.iter(|| black_box(std::thread::available_parallelism()))
    });
    group.bench_function("coldstart probe (cpu, memory, platform)", |b| {
        b.iter(|| black_box(Probe::new().run()))
    });
    let budget = Probe::new().run();
    let env = Env::process();
    group.bench_function("coldstart plan", |b| {
        b.iter(|| black_box(Plan::from_budget(black_box(&budget), &Settings::NONE, &env)))
    });
    group.finish();
}

criterion_group!(benches, probe);
criterion_main!(benches);

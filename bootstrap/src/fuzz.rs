/*!
Entry points for the fuzz targets in `fuzz/`: the probe's file parsers, which are not
public API. Compiled only under `cfg(fuzzing)`, which `cargo fuzz` sets; never part of
a normal build.

Each function feeds its input to the parsers and asserts what their callers rely on,
so the fuzzer finds wrong answers as well as panics.
*/

use crate::probe::parse;

/// `cpu.max`, the v1 CFS pair, `memory.max`-style limits and `memory.stat` lines.
pub fn cgroup_files(text: &str) {
    match parse::cpu_max(text) {
        Ok(Some(cores)) => assert!(
            cores.is_finite() && cores > 0.0,
            "cpu.max {text:?} gave {cores}"
        ),
        Ok(None) => {}
        // Every error has a message to show.
        Err(bad) => assert!(!bad.to_string().is_empty()),
    }
    let (quota, period) = text.split_once('\n').unwrap_or((text, "100000"));
    if let Ok(Some(cores)) = parse::cfs_period(period).and_then(|p| parse::cfs_quota(quota, p)) {
        assert!(
            cores.is_finite() && cores > 0.0,
            "cfs {text:?} gave {cores}"
        );
    }
    if let Ok(Some(bytes)) = parse::memory_limit(text) {
        assert!(
            bytes < parse::UNLIMITED_MEMORY,
            "memory {text:?} gave {bytes}"
        );
    }
    for key in ["hierarchical_memory_limit", "total_rss"] {
        if let Some(Ok(Some(bytes))) = parse::stat_value(text, key) {
            assert!(bytes < parse::UNLIMITED_MEMORY);
        }
    }
    // The same two numbers as v2's `cpu.max` and as v1's quota and period: one budget.
    let mut words = text.split_ascii_whitespace();
    if let (Some(quota), Some(period), None) = (words.next(), words.next(), words.next())
        && quota.bytes().all(|b| b.is_ascii_digit())
    {
        let v2 = parse::cpu_max(text).ok();
        let v1 = parse::cfs_period(period)
            .and_then(|p| parse::cfs_quota(quota, p))
            .ok();
        assert_eq!(v2, v1, "{text:?} as cpu.max and as the v1 pair");
    }
}

/// `/proc/self/cgroup`.
pub fn proc_cgroup(text: &str) {
    let found = parse::proc_cgroup(text);
    for (controllers, path) in [&found.cpu, &found.memory].into_iter().flatten() {
        assert!(path.starts_with('/'), "cgroup path {path:?} from {text:?}");
        assert!(text.contains(controllers));
        assert!(found.any_v1);
    }
    if let Some(path) = &found.unified {
        assert!(path.starts_with('/'));
    }
}

/// `/proc/self/mountinfo`, line by line.
pub fn mountinfo(text: &str) {
    for line in text.lines() {
        if let Some(mount) = parse::mountinfo_line(line) {
            // Unescaping only ever shortens a field: each is at most its own raw
            // field (the fourth and fifth, split at single spaces as the kernel writes
            // them), not just the line.
            let raw: Vec<&str> = line.split(' ').collect();
            if let (Some(root), Some(point)) = (raw.get(3), raw.get(4)) {
                assert!(mount.root.len() <= root.len(), "{line:?}");
                assert!(mount.mount_point.len() <= point.len(), "{line:?}");
            }
        }
    }
}

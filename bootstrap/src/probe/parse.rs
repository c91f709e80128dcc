//! Parsers for the files the kernel writes: `/proc/self/cgroup`, `/proc/self/mountinfo`,
//! `cpu.max`, `cpu.cfs_*`, `memory.*` and `memory.stat`. They take text and return values
//! or a [`Bad`] that says what was wrong; they never panic, whatever the input.

use std::fmt;

/// What was wrong with a file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bad {
    Empty,
    NotANumber(String),
    Negative(String),
    TooLarge(String),
    ZeroPeriod,
    ZeroQuota,
    /// More fields than the kernel writes; the file's text, trimmed.
    TooManyFields(String),
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bad::Empty => f.write_str("file is empty"),
            Bad::NotANumber(s) => write!(f, "`{s}` is not a number"),
            Bad::Negative(s) => write!(f, "`{s}` is negative"),
            Bad::TooLarge(s) => write!(f, "`{s}` does not fit in 64 bits"),
            Bad::ZeroPeriod => f.write_str("the CFS period is 0"),
            Bad::ZeroQuota => f.write_str("the CPU quota is 0, which the kernel never writes"),
            Bad::TooManyFields(s) => write!(f, "`{s}` has more fields than the kernel writes"),
        }
    }
}

/// The kernel's default CFS period, used when `cpu.max` holds only a quota.
pub(crate) const DEFAULT_PERIOD_US: u64 = 100_000;

/// Memory limits at or above this are the kernel's way of saying "no limit"
/// (v1 writes `PAGE_COUNTER_MAX` pages, 9223372036854771712 bytes on x86_64).
pub(crate) const UNLIMITED_MEMORY: u64 = 1 << 62;

/// `text` as a reason quotes it: at most 60 characters of it, and control characters
/// (a line break, an escape sequence) escaped, so that a file's garbage stays on the
/// reason's one line and cannot move a terminal's cursor.
fn quoted(text: &str) -> String {
    let end = text.char_indices().nth(60).map_or(text.len(), |(i, _)| i);
    let more = if end < text.len() { "..." } else { "" };
    format!("{}{more}", crate::plan::settings::OneLine(&text[..end]))
}

fn unsigned(s: &str) -> Result<u64, Bad> {
    if s.is_empty() {
        return Err(Bad::Empty);
    }
    if let Some(rest) = s.strip_prefix('-') {
        return if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            Err(Bad::Negative(quoted(s)))
        } else {
            Err(Bad::NotANumber(quoted(s)))
        };
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Bad::NotANumber(quoted(s)));
    }
    s.parse::<u64>().map_err(|_| Bad::TooLarge(quoted(s)))
}

/// A CPU quota as a number of cores (quota / period); `None` means no limit.
pub(crate) fn cpu_max(text: &str) -> Result<Option<f64>, Bad> {
    let mut fields = text.split_ascii_whitespace();
    let quota = fields.next().ok_or(Bad::Empty)?;
    let period = match fields.next() {
        Some(p) => unsigned(p)?,
        None => DEFAULT_PERIOD_US,
    };
    if fields.next().is_some() {
        // Quoted in the reason: at most a line's worth of it.
        return Err(Bad::TooManyFields(quoted(text.trim())));
    }
    if period == 0 {
        return Err(Bad::ZeroPeriod);
    }
    if quota == "max" {
        return Ok(None);
    }
    Ok(Some(cores(unsigned(quota)?, period)?))
}

/// Quota over period; a zero quota is garbage (the kernel's minimum is 1 ms), and
/// would plan for no CPU at all.
fn cores(quota: u64, period: u64) -> Result<f64, Bad> {
    if quota == 0 {
        return Err(Bad::ZeroQuota);
    }
    Ok(quota as f64 / period as f64)
}

/// A v1 quota from `cpu.cfs_quota_us`, over a `period` read with [`cfs_period`], in
/// cores; `-1` means no limit. An error is the quota file's.
pub(crate) fn cfs_quota(quota: &str, period: u64) -> Result<Option<f64>, Bad> {
    let quota = quota.trim_ascii();
    if quota == "-1" {
        return Ok(None);
    }
    Ok(Some(cores(unsigned(quota)?, period)?))
}

/// `cpu.cfs_period_us`; 0 is garbage (the kernel's minimum is 1 ms).
pub(crate) fn cfs_period(text: &str) -> Result<u64, Bad> {
    match unsigned(text.trim_ascii())? {
        0 => Err(Bad::ZeroPeriod),
        period => Ok(period),
    }
}

/// A memory limit in bytes (`memory.max`, `memory.high`, `memory.limit_in_bytes`);
/// `None` means no limit.
pub(crate) fn memory_limit(text: &str) -> Result<Option<u64>, Bad> {
    let text = text.trim_ascii();
    if text == "max" {
        return Ok(None);
    }
    let value = unsigned(text)?;
    Ok((value < UNLIMITED_MEMORY).then_some(value))
}

/// The value of `key` in a `memory.stat`-style file (`key value` lines).
pub(crate) fn stat_value(text: &str, key: &str) -> Option<Result<Option<u64>, Bad>> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| memory_limit(v))
    })
}

/// The cgroup paths of this process, from `/proc/self/cgroup`; they borrow the text.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup<'t> {
    /// `(controllers, path)` of the v1 hierarchy that has the `cpu` controller.
    pub(crate) cpu: Option<(&'t str, &'t str)>,
    /// `(controllers, path)` of the v1 hierarchy that has the `memory` controller.
    pub(crate) memory: Option<(&'t str, &'t str)>,
    /// `(controllers, path)` of the v1 hierarchy that has the `pids` controller.
    pub(crate) pids: Option<(&'t str, &'t str)>,
    /// Path in the v2 (unified) hierarchy.
    pub(crate) unified: Option<&'t str>,
    /// Whether any v1 hierarchy (with controllers or named) is listed.
    pub(crate) any_v1: bool,
}

/// Parses `/proc/self/cgroup`: `hierarchy-ID:controller-list:cgroup-path` lines.
pub(crate) fn proc_cgroup(text: &str) -> ProcCgroup<'_> {
    let mut out = ProcCgroup::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        if id == "0" && controllers.is_empty() {
            out.unified = Some(path);
            continue;
        }
        out.any_v1 = true;
        for c in controllers.split(',') {
            let slot = match c {
                "cpu" => &mut out.cpu,
                "memory" => &mut out.memory,
                "pids" => &mut out.pids,
                _ => continue,
            };
            *slot = Some((controllers, path));
        }
    }
    out
}

/// One line of `/proc/self/mountinfo`, the fields coldstart needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The path inside the filesystem that is mounted (for cgroups, a cgroup path,
    /// `/..`-prefixed when the mount lies outside this process's cgroup namespace).
    pub(crate) root: String,
    /// Where it is mounted.
    pub(crate) mount_point: String,
    /// `cgroup` or `cgroup2` for the mounts we look for.
    pub(crate) fs_type: String,
    /// Super-block options; for v1 cgroups they name the controllers.
    pub(crate) super_options: String,
}

/// Parses one mountinfo line; `None` for a line that is not well formed.
pub(crate) fn mountinfo_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let root = l.nth(3)?;
    let mount_point = l.next()?;
    let mut r = right.split(' ');
    let fs_type = r.next()?;
    let _source = r.next()?;
    let super_options = r.next().unwrap_or("");
    Some(Mount {
        root: unescape_octal(root),
        mount_point: unescape_octal(mount_point),
        fs_type: fs_type.to_owned(),
        super_options: super_options.to_owned(),
    })
}

/// Mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape_octal(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(b) = u8::try_from(value) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The v1 pair and v2's `cpu.max` take the same blanks around a number, ASCII
    /// ones only: a vertical tab after v1's period was trimmed (Unicode's blanks) and
    /// gave 0.2 cores where `cpu.max` refused the same text (found by the fuzzer).
    #[test]
    fn both_versions_take_the_same_blanks() {
        let text = "1\r5\u{b}\r";
        assert!(cpu_max(text).is_err());
        assert!(cfs_period("5\u{b}\r").is_err());
        assert!(memory_limit("5\u{b}").is_err());
        assert_eq!(cfs_period(" 5\n").unwrap(), 5);
        assert_eq!(memory_limit("\t64\r\n").unwrap(), Some(64));
    }

    #[test]
    fn cpu_max_shapes() {
        assert_eq!(cpu_max("max 100000\n"), Ok(None));
        assert_eq!(cpu_max("50000 100000\n"), Ok(Some(0.5)));
        assert_eq!(cpu_max("150000 100000"), Ok(Some(1.5)));
        assert_eq!(
            cpu_max("25000"),
            Ok(Some(0.25)),
            "one field: default period"
        );
        assert_eq!(cpu_max("max"), Ok(None));
        assert_eq!(cpu_max("50000 0"), Err(Bad::ZeroPeriod));
        assert_eq!(cpu_max(""), Err(Bad::Empty));
        assert_eq!(cpu_max("-5 100000"), Err(Bad::Negative("-5".into())));
        assert_eq!(cpu_max("1 2 3\n"), Err(Bad::TooManyFields("1 2 3".into())));
        assert_eq!(
            Bad::TooManyFields("1 2 3".into()).to_string(),
            "`1 2 3` has more fields than the kernel writes"
        );
        let long = "1 ".repeat(1000);
        let Err(Bad::TooManyFields(quoted)) = cpu_max(&long) else {
            panic!("not refused")
        };
        assert_eq!(quoted, format!("{}...", &long[..60]));
        assert!(matches!(
            cpu_max("99999999999999999999999 100000"),
            Err(Bad::TooLarge(_))
        ));
        assert!(matches!(cpu_max("abc 100000"), Err(Bad::NotANumber(_))));
        // Garbage is quoted on one line, at most 60 characters of it, its control
        // characters escaped: a file of 4 KiB was quoted whole, escape sequences too.
        let garbage = format!("\x1b[2J{}", "9".repeat(4000));
        let said = memory_limit(&garbage).unwrap_err().to_string();
        assert!(said.starts_with("`\\u{1b}[2J999"), "{said}");
        assert!(said.len() < 100 && !said.contains('\x1b'), "{said}");
    }

    #[test]
    fn cfs_quota_shapes() {
        assert_eq!(cfs_quota("-1\n", 100_000), Ok(None));
        assert_eq!(cfs_quota("50000\n", 100_000), Ok(Some(0.5)));
        assert_eq!(cfs_period("100000\n"), Ok(100_000));
        assert_eq!(cfs_period("0\n"), Err(Bad::ZeroPeriod));
        assert_eq!(cfs_period("x"), Err(Bad::NotANumber("x".into())));
        assert_eq!(cfs_quota("-2", 100_000), Err(Bad::Negative("-2".into())));
    }

    /// Regression (found by the `probe_tree` fuzz target): a quota of 0 gave 0 cores,
    /// and the plan a budget of no CPU; it is garbage the kernel never writes.
    #[test]
    fn a_zero_quota_is_garbage_not_zero_cores() {
        assert_eq!(cpu_max("0"), Err(Bad::ZeroQuota));
        assert_eq!(cpu_max("0 100000"), Err(Bad::ZeroQuota));
        assert_eq!(cfs_quota("0", 100_000), Err(Bad::ZeroQuota));
        assert!(Bad::ZeroQuota.to_string().contains("quota is 0"));
    }

    #[test]
    fn memory_shapes() {
        assert_eq!(memory_limit("max\n"), Ok(None));
        assert_eq!(memory_limit("67108864\n"), Ok(Some(67_108_864)));
        assert_eq!(memory_limit("9223372036854771712\n"), Ok(None));
        assert!(memory_limit("-1").is_err());
        assert!(memory_limit("18446744073709551616").is_err());
        let stat = "cache 0\nrss 12\nhierarchical_memory_limit 1048576\nhierarchical_memsw_limit 9223372036854771712\n";
        assert_eq!(
            stat_value(stat, "hierarchical_memory_limit"),
            Some(Ok(Some(1_048_576)))
        );
        assert_eq!(stat_value(stat, "missing"), None);
    }

    #[test]
    fn proc_cgroup_hybrid() {
        let text = "9:name=systemd:/\n4:memory:/a/b\n1:cpu,cpuacct:/x y\n0::/\n";
        let p = proc_cgroup(text);
        assert_eq!(p.memory, Some(("memory", "/a/b")));
        assert_eq!(p.cpu, Some(("cpu,cpuacct", "/x y")));
        assert_eq!(p.unified, Some("/"));
        assert!(p.any_v1);
        let v2 = proc_cgroup("0::/user.slice/app:1.scope\n");
        assert_eq!(v2.unified, Some("/user.slice/app:1.scope"));
        assert!(!v2.any_v1);
    }

    #[test]
    fn mountinfo_lines() {
        let m = mountinfo_line(
            "32 31 0:29 /../.. /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
        )
        .expect("well formed");
        assert_eq!(m.root, "/../..");
        assert_eq!(m.mount_point, "/sys/fs/cgroup/cpu");
        assert_eq!(m.fs_type, "cgroup");
        assert_eq!(m.super_options, "rw,cpu");
        let spaced =
            mountinfo_line("1 2 0:3 / /mnt/with\\040space rw shared:1 - cgroup2 cgroup2 rw")
                .expect("well formed");
        assert_eq!(spaced.mount_point, "/mnt/with space");
        assert_eq!(mountinfo_line("garbage"), None);
    }

    proptest! {
        #[test]
        // The files' own alphabet, line breaks and blanks included, as often as any
        // text: `\\PC*` drew no control character, and so one line only.
        fn parsers_never_panic(s in prop_oneof!["[0-9a-z:/= \\t\\n\\r\\x0b\\-]{0,64}", "(?s).{0,64}"]) {
            let _ = cpu_max(&s);
            let _ = cfs_quota(&s, 100_000);
            let _ = cfs_period(&s);
            let _ = memory_limit(&s);
            let _ = stat_value(&s, "hierarchical_memory_limit");
            let _ = proc_cgroup(&s);
            let _ = mountinfo_line(&s);
        }

        #[test]
        fn cpu_max_round_trips(quota in 1u64..=u32::MAX as u64, period in 1u64..=1_000_000) {
            let got = cpu_max(&format!("{quota} {period}\n")).expect("valid");
            prop_assert_eq!(got, Some(quota as f64 / period as f64));
        }

        #[test]
        fn memory_round_trips(bytes in 0u64..UNLIMITED_MEMORY) {
            prop_assert_eq!(memory_limit(&format!("{bytes}\n")), Ok(Some(bytes)));
        }

        #[test]
        fn mountinfo_escapes_round_trip(name in "[a-z \\\\]{1,12}") {
            let escaped = name.replace('\\', "\\134").replace(' ', "\\040");
            let line = format!("1 2 0:3 / /m/{escaped} rw - cgroup2 none rw");
            let m = mountinfo_line(&line).expect("well formed");
            prop_assert_eq!(m.mount_point, format!("/m/{name}"));
        }
    }
}

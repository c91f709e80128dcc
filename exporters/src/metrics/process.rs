/*!
Process metrics with the names client_golang gives them, so existing dashboards and
alerts work unchanged: CPU seconds, resident and virtual memory and the most virtual
memory allowed, start time, open and maximum file descriptors; and threads, as the
Rust `prometheus` crate names them (client_golang has no thread count). Linux only;
read from `/proc/self` at scrape time, never at start-up.

A file that cannot be read or parsed leaves its metrics out of the scrape; it never
fails the scrape.
*/

use super::text::{Kind, family, single};

/// What `/proc/self/stat` says, in the units Prometheus wants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stat {
    pub(crate) cpu_seconds: f64,
    pub(crate) threads: f64,
    /// Seconds after boot.
    pub(crate) start_after_boot: f64,
    pub(crate) virtual_bytes: f64,
    pub(crate) resident_bytes: f64,
}

/// Parses `/proc/self/stat`. The command name (field 2) may hold spaces and
/// parentheses, so the fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str, ticks_per_second: f64, page_size: f64) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // `rest` starts at field 3 (state): field n is at index n - 3.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
        threads: field(20)?,
        start_after_boot: field(22)? / ticks_per_second,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
    })
}

/// The boot time in seconds since the epoch, from `/proc/stat`'s `btime` line.
pub(crate) fn parse_boot_time(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn sysconf(name: libc::c_int) -> Option<f64> {
    // SAFETY: sysconf only reads a configuration value.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as f64)
}

fn open_fds() -> Option<f64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

/// What `getrlimit` takes: glibc's own type, an `int` elsewhere (musl).
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// The soft limit on `resource`, as client_golang reads it (through procfs, which reads
/// `unlimited` as 2^64 - 1): dashboards made for Go services see the same figure.
fn soft_limit(resource: Resource) -> Option<f64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to write.
    let ok = unsafe { libc::getrlimit(resource, &mut limit) } == 0;
    let limit = match limit.rlim_cur {
        libc::RLIM_INFINITY => u64::MAX as f64,
        cur => cur as f64,
    };
    ok.then_some(limit)
}

fn max_fds() -> Option<f64> {
    soft_limit(libc::RLIMIT_NOFILE)
}

/// The address-space limit (`ulimit -v`).
fn max_virtual_bytes() -> Option<f64> {
    soft_limit(libc::RLIMIT_AS)
}

/// When this process started, in seconds since the epoch, worked out at the first
/// scrape and kept: the kernel's boot time (`btime`) is reckoned from the wall clock,
/// so a clock stepped by time sync moves it, and each move would be one more
/// `changes()` of a start time, a restart that never happened to an alert counting
/// them (prometheus/client_golang#289).
fn start_time(start_after_boot: f64) -> Option<f64> {
    static START: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    if let Some(start) = START.get() {
        return Some(*start);
    }
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| parse_boot_time(&t))?;
    Some(*START.get_or_init(|| boot + start_after_boot))
}

/// Appends the process families to `out`.
pub(crate) fn render(out: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| {
            parse_stat(
                &t,
                sysconf(libc::_SC_CLK_TCK)?,
                sysconf(libc::_SC_PAGESIZE)?,
            )
        });
    if let Some(s) = stat {
        single(
            out,
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            Kind::Counter,
            s.cpu_seconds,
        );
        single(
            out,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Kind::Gauge,
            s.resident_bytes,
        );
        single(
            out,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Kind::Gauge,
            s.virtual_bytes,
        );
        single(
            out,
            "process_threads",
            "Number of OS threads in the process.",
            Kind::Gauge,
            s.threads,
        );
        if let Some(start) = start_time(s.start_after_boot) {
            single(
                out,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                Kind::Gauge,
                start,
            );
        }
    }
    let fds = open_fds().map(|v| (&[][..], v));
    family(
        out,
        "process_open_fds",
        "Number of open file descriptors.",
        Kind::Gauge,
        fds,
    );
    let max = max_fds().map(|v| (&[][..], v));
    family(
        out,
        "process_max_fds",
        "Maximum number of open file descriptors.",
        Kind::Gauge,
        max,
    );
    let max = max_virtual_bytes().map(|v| (&[][..], v));
    family(
        out,
        "process_virtual_memory_max_bytes",
        "Maximum amount of virtual memory available in bytes.",
        Kind::Gauge,
        max,
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    // A real line, with a command name that holds a space and a parenthesis.
    const STAT: &str = "4242 (my server) 1) S 1 4242 4242 0 -1 4194560 1200 0 0 0 150 50 0 0 20 0 3 0 98765 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn reads_the_fields_after_the_command_name() {
        let s = parse_stat(STAT, 100.0, 4096.0).unwrap();
        assert_eq!(s.cpu_seconds, 2.0);
        assert_eq!(s.threads, 3.0);
        assert_eq!(s.start_after_boot, 987.65);
        assert_eq!(s.virtual_bytes, 123_456_789.0);
        assert_eq!(s.resident_bytes, 2048.0 * 4096.0);
    }

    #[test]
    fn reads_this_process() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds",
            "process_virtual_memory_max_bytes",
            "process_threads",
        ] {
            assert!(
                out.contains(&format!("\n{name} ")),
                "{name} missing from\n{out}"
            );
        }
        // The address-space limit as `ulimit -v` has it, 2^64 - 1 for none (it was -1,
        // which client_golang never gives).
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid rlimit to write.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) }, 0);
        let expected = if limit.rlim_cur == libc::RLIM_INFINITY {
            (u64::MAX as f64).to_string()
        } else {
            limit.rlim_cur.to_string()
        };
        assert!(
            out.contains(&format!("\nprocess_virtual_memory_max_bytes {expected}\n")),
            "{out}"
        );
    }

    /// The start time is the first scrape's, whatever the boot time reads later.
    #[test]
    fn the_start_time_is_kept_from_the_first_scrape() {
        let first = start_time(10.0).unwrap();
        assert_eq!(start_time(99.0), Some(first), "not worked out again");
    }

    #[test]
    fn boot_time() {
        assert_eq!(parse_boot_time("cpu 1 2\nbtime 1700000000\n"), Some(1.7e9));
        assert_eq!(parse_boot_time("cpu 1 2\n"), None);
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = parse_stat(&text, 100.0, 4096.0);
            let _ = parse_boot_time(&text);
        }
    }
}

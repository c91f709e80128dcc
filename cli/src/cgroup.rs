//! Temporary cgroups with CPU and memory limits, or a task limit, made with cgroups-rs
//! (the design's cgroup management crate; fine here, where start-up cost does not
//! matter) and removed on drop. Processes join them before `exec` by writing to `cgroup.procs`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use cgroups_rs::fs::cgroup_builder::CgroupBuilder;
use cgroups_rs::fs::{Cgroup, Controller, MaxValue, Subsystem, hierarchies};

/// CPU and memory limits for a temporary cgroup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// CPU cores (quota / period with a 100 ms period); `None` for no CPU limit.
    pub cpus: Option<f64>,
    /// Memory limit in bytes; `None` for no memory limit.
    pub memory_bytes: Option<u64>,
}

/// The CFS period used for CPU limits.
pub const PERIOD_US: u64 = 100_000;

/// A cgroup that exists until this value is dropped.
pub struct TempCgroup {
    cgroup: Cgroup,
    name: String,
}

impl TempCgroup {
    /// Creates the cgroup `name` (may be nested, `parent/child`) in the cpu and memory
    /// controllers, with `limits`.
    ///
    /// # Errors
    ///
    /// Not root, no cgroup v1 or v2 hierarchy with cpu and memory controllers, or a
    /// limit the kernel refuses.
    pub fn create(name: &str, limits: Limits) -> anyhow::Result<TempCgroup> {
        if !is_root() {
            bail!("creating a cgroup needs root; run as root or drop --cpus/--memory");
        }
        let hierarchy = hierarchies::auto();
        let named = || {
            Cgroup::load_with_specified_controllers(
                hierarchies::auto(),
                name,
                vec!["cpu".into(), "memory".into()],
            )
        };
        let existed = named().exists();
        let mut builder =
            CgroupBuilder::new(name).set_specified_controllers(vec!["cpu".into(), "memory".into()]);
        if let Some(cpus) = limits.cpus {
            if !(cpus > 0.0 && cpus.is_finite()) {
                bail!("a CPU limit must be a positive number of cores, got {cpus}");
            }
            let quota = (cpus * PERIOD_US as f64).round() as i64;
            builder = builder
                .cpu()
                .period(PERIOD_US)
                .quota(quota.max(1000))
                .done();
        }
        if let Some(bytes) = limits.memory_bytes {
            let bytes = i64::try_from(bytes).context("memory limit does not fit in 63 bits")?;
            builder = builder.memory().memory_hard_limit(bytes).done();
        }
        // The clean-up on a signal takes this first and keeps it: it cannot run between
        // the builder's making the directories and their being known to it (they
        // would be left), nor remove them before they are made.
        let launching = crate::interrupt::launching();
        let cgroup = match builder.build(hierarchy) {
            Ok(cgroup) => cgroup,
            Err(e) => {
                // The builder makes the directories before it writes the limits, and
                // leaves them behind when the kernel refuses one.
                if !existed {
                    for subsystem in named().subsystems() {
                        let _ = std::fs::remove_dir(subsystem.to_controller().path());
                    }
                }
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot create cgroup {name} with {limits:?}")));
            }
        };
        let cgroup = TempCgroup {
            cgroup,
            name: name.to_owned(),
        };
        crate::interrupt::cgroup_created(cgroup.dirs());
        drop(launching);
        // On cgroup v1 a controller that is not mounted (a kernel booted with
        // `cgroup_disable=memory`) is left out without an error, and its limit with
        // it: runs would be reported under a limit never applied.
        let has = |controller: &str| {
            cgroup
                .cgroup
                .subsystems()
                .iter()
                .any(|s| s.controller_name() == controller)
        };
        // cgroups-rs does not check every write either (v2's `memory.max` and the
        // parent's `+memory` go unchecked): the limits are read back, so that runs are
        // never reported under a limit the kernel does not hold.
        for (controller, asked, files) in [
            (
                "cpu",
                limits.cpus.is_some(),
                ["cpu.max", "cpu.cfs_quota_us"],
            ),
            (
                "memory",
                limits.memory_bytes.is_some(),
                ["memory.max", "memory.limit_in_bytes"],
            ),
        ] {
            if !asked {
                continue;
            }
            if !has(controller) {
                bail!(
                    "cgroup {name} has no {controller} controller (it is not mounted on this machine), so its {controller} limit cannot be applied; drop the limit or mount the controller"
                );
            }
            let held = cgroup.dirs().iter().any(|dir| {
                files.iter().any(|f| {
                    std::fs::read_to_string(dir.join(f)).is_ok_and(|t| limits_something(&t))
                })
            });
            if !held {
                bail!(
                    "cgroup {name} was made but does not hold its {controller} limit ({} reads no limit); the controller may not be enabled for it (on cgroup v2, in the parent's cgroup.subtree_control)",
                    files.join(" or ")
                );
            }
        }
        Ok(cgroup)
    }

    /// Creates the cgroup `name` in the pids controller alone, where it and its
    /// descendants may hold at most `tasks` tasks (threads count: `pids.max`).
    ///
    /// # Errors
    ///
    /// Not root, no hierarchy with a pids controller, or a limit the kernel refuses.
    pub fn with_task_limit(name: &str, tasks: u32) -> anyhow::Result<TempCgroup> {
        if !is_root() {
            bail!("creating a cgroup needs root");
        }
        let cgroup = CgroupBuilder::new(name)
            .set_specified_controllers(vec!["pids".into()])
            .pid()
            .maximum_number_of_processes(MaxValue::Value(i64::from(tasks)))
            .done()
            .build(hierarchies::auto())
            .with_context(|| format!("cannot create cgroup {name} with pids.max {tasks}"))?;
        let cgroup = TempCgroup {
            cgroup,
            name: name.to_owned(),
        };
        crate::interrupt::cgroup_created(cgroup.dirs());
        Ok(cgroup)
    }

    /// The cgroup's directory in each controller it was created in.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .cgroup
            .subsystems()
            .iter()
            .filter_map(|s| match s {
                Subsystem::Cpu(c) => Some(c.path().to_path_buf()),
                Subsystem::Mem(c) => Some(c.path().to_path_buf()),
                Subsystem::Pid(c) => Some(c.path().to_path_buf()),
                _ => None,
            })
            .collect();
        dirs.dedup();
        dirs
    }

    /// The `cgroup.procs` files a process writes `0` to in order to join this cgroup
    /// in every controller.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.dirs().iter().map(|d| d.join("cgroup.procs")).collect();
        if self.cgroup.v2() {
            files.truncate(1);
        }
        files
    }

    /// Makes `command`'s process join this cgroup after fork and before exec, so the
    /// program starts inside its limits from its first instruction.
    ///
    /// # Errors
    ///
    /// A `cgroup.procs` file that cannot be opened for writing.
    pub fn join_before_exec(&self, command: &mut std::process::Command) -> anyhow::Result<()> {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let files: Vec<std::fs::File> = self
            .procs_files()
            .iter()
            .map(|p| {
                std::fs::File::options()
                    .write(true)
                    .open(p)
                    .with_context(|| format!("cannot open {}", p.display()))
            })
            .collect::<anyhow::Result<_>>()?;
        // SAFETY: runs in the forked child before exec; it only calls write(2) on
        // descriptors the closure owns (close-on-exec) and does not allocate.
        unsafe {
            command.pre_exec(move || {
                for file in &files {
                    // "0" moves the writing process.
                    if libc::write(file.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup
    /// (`oom_kill` in v1 `memory.oom_control` or v2 `memory.events`); `None` when the
    /// kernel does not say.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = if self.cgroup.v2() {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.dirs().iter().find_map(|dir| {
            let text = std::fs::read_to_string(dir.join(file)).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|n| n.trim().parse().ok())
        })
    }

    /// Kills every process in it (`cgroup.procs`): what a program left running, even
    /// outside its process group (a daemon that called `setsid`).
    pub fn kill_all(&self) {
        for dir in self.dirs() {
            kill_procs(&dir);
        }
    }

    /// The name it was created with.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Whether a cgroup limit file's text holds a limit: not `max` (v2), `-1` (v1's CPU
/// quota) or the page counter's largest value (v1's unlimited memory).
fn limits_something(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    first.parse::<i64>().is_ok_and(|n| n > 0 && n < 1 << 62)
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        self.kill_all();
        // A process killed a moment ago may still be leaving the cgroup.
        for _ in 0..50 {
            if self.cgroup.delete().is_ok() {
                crate::interrupt::cgroup_removed(&self.dirs());
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        coldstart_bootstrap::say!("warning: could not remove cgroup {}", self.name);
    }
}

/// Kills every process listed in `dir`'s `cgroup.procs`, a cgroup this tool created.
pub(crate) fn kill_procs(dir: &std::path::Path) {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs
        .lines()
        .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
    {
        // SAFETY: kill(2) on a process in a cgroup this tool created.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `what` (a test, a benchmark setting) can create cgroups here. Where it
/// cannot, outside CI this prints that `what` is skipped and why and returns false;
/// under `CI=true` it is an error, because CI must run what needs real cgroups.
///
/// # Errors
///
/// Not root, with `CI` set.
pub fn can_create(what: &str) -> anyhow::Result<bool> {
    if is_root() {
        return Ok(true);
    }
    if in_ci() {
        bail!("{what} needs root to create cgroups, and CI must run it");
    }
    coldstart_bootstrap::say!("SKIPPED {what}: creating cgroups needs root");
    Ok(false)
}

/// Whether this is a CI run: `CI` set to anything but empty, `false` or `0`.
fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "false" | "0"))
}

/// A memory limit as given, in its largest whole unit: `1500K` is not shown as 1 MiB.
pub fn memory_shown(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The least memory limit taken: below it a program is killed before it can answer,
/// which says nothing of the program (a size given without its unit, most likely).
const MIN_MEMORY: u64 = 4 << 20;

/// Refuses a memory limit below `MIN_MEMORY`.
///
/// # Errors
///
/// `bytes` is less than 4 MiB.
pub fn check_memory(bytes: u64) -> anyhow::Result<()> {
    if bytes < MIN_MEMORY {
        bail!(
            "--memory is {bytes} bytes, less than any program starts in (4M); a size takes its unit, such as 64M"
        );
    }
    Ok(())
}

/// Parses a CPU limit such as `0.25` or `1.5`.
///
/// # Errors
///
/// Anything but a number of cores from 0.01 (the kernel's smallest quota, 1 ms of a
/// 100 ms period) to 1024.
pub fn parse_cpus(s: &str) -> anyhow::Result<f64> {
    match s.parse::<f64>() {
        Ok(c) if (0.01..=1024.0).contains(&c) => Ok(c),
        _ => {
            bail!("set --cpus to a number of cores from 0.01 to 1024, such as 0.25 or 2, got `{s}`")
        }
    }
}

/// Parses a memory size such as `64M`, `512Mi`, `1G` or `67108864` (powers of 1024).
///
/// # Errors
///
/// Anything but a positive size with an optional K, M or G suffix.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" | "kb" => 1 << 10,
        "m" | "mi" | "mib" | "mb" => 1 << 20,
        "g" | "gi" | "gib" | "gb" => 1 << 30,
        _ => bail!("set --memory to a size such as 64M or 1G, got `{s}`"),
    };
    match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
        // The kernel takes a limit as a signed 64-bit count of bytes.
        Some(n) if n > 0 && i64::try_from(n).is_ok() => Ok(n),
        _ => bail!(
            "set --memory to a size above 0 such as 64M or 1G, at most {}G, got `{s}`",
            i64::MAX as u64 >> 30
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("64X").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("").is_err());
        // A limit the kernel cannot take is refused here, with the range, not later.
        let e = parse_size("10000000000G").unwrap_err().to_string();
        assert!(e.contains("at most 8589934591G"), "{e}");
        // 0 is refused without a range that `check_memory` would then refuse too.
        let e = parse_size("0").unwrap_err().to_string();
        assert!(e.contains("above 0") && !e.contains("1 byte"), "{e}");
        assert!(check_memory(1).unwrap_err().to_string().contains("(4M)"));
        assert_eq!(parse_size("8589934591G").unwrap(), 8_589_934_591 << 30);
        assert_eq!(parse_cpus("0.25").unwrap(), 0.25);
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("many").is_err());
        assert!(parse_cpus("NaN").is_err());
        assert!(parse_cpus("inf").is_err());
    }

    /// What a limit file reads when a limit was written, and when none holds (the
    /// write went unchecked and failed, or never happened).
    #[test]
    fn a_limit_file_says_whether_a_limit_holds() {
        for held in ["50000 100000\n", "25000\n", "67108864\n"] {
            assert!(limits_something(held), "{held:?}");
        }
        for none in [
            "max 100000\n",
            "max\n",
            "-1\n",
            "9223372036854771712\n",
            "",
            "garbage",
        ] {
            assert!(!limits_something(none), "{none:?}");
        }
    }

    proptest::proptest! {
        /// Any text is a value in range or an error naming the option; never a panic.
        #[test]
        fn values_never_panic_and_stay_in_range(s in "\\PC*") {
            if let Ok(cores) = parse_cpus(&s) {
                proptest::prop_assert!(cores > 0.0 && cores <= 1024.0);
            } else {
                proptest::prop_assert!(parse_cpus(&s).unwrap_err().to_string().contains("--cpus"));
            }
            match parse_size(&s) {
                Ok(bytes) => proptest::prop_assert!(bytes > 0 && i64::try_from(bytes).is_ok()),
                Err(e) => proptest::prop_assert!(e.to_string().contains("--memory")),
            }
        }
    }
}

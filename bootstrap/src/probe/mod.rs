//! The probe: what CPU and memory this process may really use.
//!
//! It reads `/proc/self/cgroup`, the cgroup files on the way from the process's cgroup
//! up to the root of the mount (keeping the smallest limit), the affinity mask, the
//! host totals and AWS Lambda's variables. It must stay cheaper than one call of
//! `std::thread::available_parallelism()` (see BENCHMARKS.md), must never panic and
//! never fail: what it cannot find out it reports as unknown, with the reason.

mod cgroup;
pub(crate) mod parse;
mod read;

use std::fmt;
use std::path::PathBuf;

use crate::{Env, Figure, Source};

/// The variable AWS Lambda sets to the function's memory size in MB.
pub const LAMBDA_MEMORY_VAR: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// The most `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` may say, exclusive: its bytes fit in 64
/// bits with room to spare.
const LAMBDA_MB_MAX: u64 = 1 << 40;
/// Lambda gives one full vCPU at this memory size, and CPU in proportion below and
/// above it (AWS Lambda documentation, "Memory and computing power").
pub const LAMBDA_MB_PER_VCPU: f64 = 1769.0;

/// Which cgroup hierarchy the process's limits come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// No cgroups (or `/proc/self/cgroup` could not be read).
    None,
    /// Only v1 hierarchies.
    V1,
    /// Only the v2 unified hierarchy.
    V2,
    /// v1 controllers and a v2 hierarchy side by side.
    Hybrid,
}

impl CgroupVersion {
    /// `none`, `v1`, `v2` or `hybrid`.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::None => "none",
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
            CgroupVersion::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the process runs, as far as its budget is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// AWS Lambda (its memory-size variable is set).
    AwsLambda,
    /// Anything else: a host, a container, a board.
    Linux,
}

impl Platform {
    /// `aws-lambda` or `linux`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::AwsLambda => "aws-lambda",
            Platform::Linux => "linux",
        }
    }
}

/// What the process may use: the result of a [`Probe`].
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// CPU cores the process may use: the smallest of the cgroup quota, the affinity
    /// mask and Lambda's share. Unknown when a cgroup file could not be read or parsed.
    pub cpu_cores: Figure<f64>,
    /// Bytes of memory the process may use: the smallest of the cgroup limits, Lambda's
    /// memory size and the host's memory. Unknown when a cgroup file could not be read
    /// or parsed.
    pub memory_bytes: Figure<u64>,
    /// CPUs the process may run on (affinity mask), the fallback for planning.
    pub host_cpus: Figure<u32>,
    /// The machine's memory, the fallback for planning.
    pub host_memory_bytes: Figure<u64>,
    /// The cgroup hierarchy in use.
    pub cgroup_version: CgroupVersion,
    /// The platform.
    pub platform: Platform,
}

/// Reads the budget of this process.
///
/// ```
/// let budget = coldstart_bootstrap::Probe::new().run();
/// // Never panics, and the host figures are always there on Linux.
/// assert!(budget.host_cpus.value.unwrap_or(1) >= 1);
/// ```
///
/// For tests, the filesystem root, the environment and the host figures can be given:
///
/// ```
/// use coldstart_bootstrap::{Env, Probe};
/// let budget = Probe::new()
///     .root("/nonexistent")
///     .env(Env::fixed([("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")]))
///     .host(2, 8 << 30)
///     .run();
/// assert_eq!(budget.memory_bytes.value, Some(512 << 20));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Probe {
    root: Option<PathBuf>,
    env: Env,
    host: Option<(u32, u64)>,
}

impl Probe {
    /// A probe of the real `/proc` and `/sys` and the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `<root>/proc/...` and `<root>/sys/...` instead of the real ones.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Reads Lambda's variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Uses these host figures instead of asking the kernel.
    pub fn host(mut self, cpus: u32, memory_bytes: u64) -> Self {
        self.host = Some((cpus, memory_bytes));
        self
    }

    /// The smallest cgroup task limit (`pids.max`) on the way from the process's
    /// cgroup to the root, and the file that set it; `None` when there is none or it
    /// cannot be read. Not part of [`Probe::run`]: start-up does not need it, only the
    /// message when the OS refuses a thread.
    pub fn task_limit(&self) -> Option<(u64, Source)> {
        let root = self.root.as_deref().unwrap_or("/".as_ref());
        let mut buf = [0u8; read::BUF];
        let text = read::read_text(&read::under(root, "/proc/self/cgroup"), &mut buf).ok()?;
        let pc = parse::proc_cgroup(&text);
        let hybrid = pc.unified.is_some() && pc.any_v1;
        let mut resolver = cgroup::Resolver::new(root);
        read_limit(&mut resolver, &pc, pc.pids, "pids", hybrid, cgroup::pids)
            .ok()
            .flatten()
    }

    /// Runs the probe. Never panics and never fails.
    pub fn run(&self) -> Budget {
        let root = self.root.as_deref().unwrap_or("/".as_ref());
        let (host_cpus, host_memory_bytes) = match self.host {
            Some((cpus, mem)) => (
                Figure::known(cpus, Source::Given),
                Figure::known(mem, Source::Given),
            ),
            None => (affinity_cpus(), host_memory()),
        };

        let mut buf = [0u8; read::BUF];
        let text = read::read_text(&read::under(root, "/proc/self/cgroup"), &mut buf);
        let proc_cgroup = match &text {
            Ok(text) => Ok(Some(parse::proc_cgroup(text))),
            // A kernel without cgroups has no such file: the host figures are the budget.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read /proc/self/cgroup: {e}")),
        };
        let (cgroup_version, cpu_limit, memory_limit) = match &proc_cgroup {
            Ok(Some(pc)) => cgroup_limits(root, pc),
            Ok(None) => (CgroupVersion::None, Ok(None), Ok(None)),
            Err(e) => (CgroupVersion::None, Err(e.clone()), Err(e.clone())),
        };

        let lambda_mb = self.env.get(LAMBDA_MEMORY_VAR).map(|v| {
            match v.to_str().and_then(|s| s.trim().parse::<u64>().ok()) {
                Some(mb) if (1..LAMBDA_MB_MAX).contains(&mb) => Ok(mb),
                Some(_) => Err(format!(
                    "{LAMBDA_MEMORY_VAR}={v:?} is out of range: from 1 to {} MB (Lambda sets 128 to 10240)",
                    LAMBDA_MB_MAX - 1
                )),
                None => Err(format!("{LAMBDA_MEMORY_VAR}={v:?} is not a whole number of MB")),
            }
        });
        let platform = if lambda_mb.is_some() {
            Platform::AwsLambda
        } else {
            Platform::Linux
        };
        let lambda = Source::Lambda(LAMBDA_MEMORY_VAR);

        let mut cpu = Candidates::new(host_cpus.clone().map(f64::from));
        cpu.limit(cpu_limit);
        let mut memory = Candidates::new(host_memory_bytes.clone());
        memory.limit(memory_limit);
        if let Some(mb) = lambda_mb {
            cpu.limit(
                mb.clone()
                    .map(|mb| Some((mb as f64 / LAMBDA_MB_PER_VCPU, lambda.clone()))),
            );
            memory.limit(mb.map(|mb| Some((mb << 20, lambda))));
        }

        Budget {
            cpu_cores: cpu.finish(),
            memory_bytes: memory.finish(),
            host_cpus,
            host_memory_bytes,
            cgroup_version,
            platform,
        }
    }
}

/// The smallest cgroup limit and the file that set it; `Err` when it is unknown.
type Limit<T> = Result<Option<(T, Source)>, String>;

fn cgroup_limits(
    root: &std::path::Path,
    pc: &parse::ProcCgroup<'_>,
) -> (CgroupVersion, Limit<f64>, Limit<u64>) {
    let has_v1 = pc.cpu.is_some() || pc.memory.is_some();
    let version = match (has_v1 || pc.any_v1, pc.unified.is_some()) {
        (true, true) => CgroupVersion::Hybrid,
        (true, false) => CgroupVersion::V1,
        (false, true) => CgroupVersion::V2,
        (false, false) => CgroupVersion::None,
    };
    let mut resolver = cgroup::Resolver::new(root);
    let hybrid = version == CgroupVersion::Hybrid;
    let cpu = read_limit(&mut resolver, pc, pc.cpu, "cpu", hybrid, cgroup::cpu);
    let memory = read_limit(
        &mut resolver,
        pc,
        pc.memory,
        "memory",
        hybrid,
        cgroup::memory,
    );
    (version, cpu, memory)
}

/// Resolves the hierarchy that holds `controller` and walks it; a leaf that is not
/// where the usual layout puts it is resolved again through mountinfo.
fn read_limit<T>(
    resolver: &mut cgroup::Resolver<'_>,
    pc: &parse::ProcCgroup<'_>,
    v1: Option<(&str, &str)>,
    controller: &str,
    hybrid: bool,
    walk: fn(&cgroup::Hierarchy<'_>) -> cgroup::Walk<T>,
) -> Limit<T> {
    let h = match (v1, pc.unified) {
        (Some((controllers, path)), _) => resolver.v1(controller, controllers, path),
        (None, Some(path)) => resolver.v2(path, hybrid),
        (None, None) => return Ok(None),
    }?;
    let missed = |m| match m {
        cgroup::Missed::Bad(why) => why,
        cgroup::Missed::Leaf => format!("{} does not exist", h.leaf.display()),
    };
    let again;
    let (walked, found) = match walk(&h) {
        Err(cgroup::Missed::Leaf) => {
            again = resolver.via_mountinfo(&h)?;
            (&again, walk(&again))
        }
        // No limit at a leaf the usual layout put under a whole hierarchy's root: in
        // a private cgroup namespace with the host's hierarchy mounted (systemd in a
        // container), `/proc/self/cgroup` names the leaf from the namespace's root,
        // and a host cgroup of that name (`/init.scope`) would be read instead of this
        // process's. Asked only here, where the answer would be "none".
        Ok(None) if h.fast_at_root() && !resolver.in_initial_cgroup_namespace() => {
            again = resolver.via_mountinfo(&h)?;
            (&again, walk(&again))
        }
        found => (&h, found),
    };
    let found = found.map_err(missed)?;
    Ok(found.map(|(value, file)| {
        let file = file.display().to_string();
        let source = if walked.v2 {
            Source::CgroupV2(file)
        } else {
            Source::CgroupV1(file)
        };
        (value, source)
    }))
}

/// The smallest of several limits; an unreadable one makes the result unknown.
struct Candidates<T> {
    best: Figure<T>,
    unknown: Option<String>,
    /// Whether one of the limits is Lambda's.
    lambda: bool,
}

impl<T: PartialOrd + Copy> Candidates<T> {
    fn new(host: Figure<T>) -> Self {
        Candidates {
            best: host,
            unknown: None,
            lambda: false,
        }
    }

    fn limit(&mut self, found: Result<Option<(T, Source)>, String>) {
        match found {
            Ok(Some((value, source))) => {
                self.lambda |= matches!(source, Source::Lambda(_));
                if self.best.value.is_none_or(|best| value < best) {
                    self.best = Figure::known(value, source);
                }
            }
            Ok(None) => {}
            Err(reason) => {
                self.unknown.get_or_insert(reason);
            }
        }
    }

    /// The smallest figure known, or unknown with the first reason a limit could not
    /// be read; but with a Lambda figure the smallest known stands when the cgroup's
    /// cannot be read (Lambda lists its controllers in `/proc/self/cgroup` and mounts
    /// none of them: the function's memory size, or the host's figure where that is
    /// smaller, is the limit then).
    fn finish(self) -> Figure<T> {
        match self.unknown {
            Some(reason) if !self.lambda => Figure::unknown(reason),
            _ => self.best,
        }
    }
}

impl<T> Figure<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Figure<U> {
        Figure {
            value: self.value.map(f),
            source: self.source,
        }
    }
}

fn affinity_cpus() -> Figure<u32> {
    // SAFETY: `set` is a plain bit set that sched_getaffinity fills; zeroed is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer and size describe `set`, which outlives the call.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc == 0 {
        // SAFETY: `set` was initialised above.
        let count = unsafe { libc::CPU_COUNT(&set) };
        if let Ok(n) = u32::try_from(count)
            && n > 0
        {
            return Figure::known(n, Source::Affinity);
        }
    } else if let Some(n) = wide_affinity_cpus() {
        return Figure::known(n, Source::Affinity);
    }
    // A kernel that refuses: count online CPUs.
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    match u32::try_from(online) {
        Ok(n) if n > 0 => Figure::known(n, Source::Host("online CPUs")),
        _ => Figure::unknown("sched_getaffinity and sysconf(_SC_NPROCESSORS_ONLN) both failed"),
    }
}

/// The affinity mask of a machine with more possible CPUs than a `cpu_set_t` holds
/// (1024), which the kernel refuses to write into one (`EINVAL`): asked again with a
/// mask twice as large each time, up to 2^16 CPUs. Online CPUs instead would ignore
/// `taskset` and cpusets there.
fn wide_affinity_cpus() -> Option<u32> {
    if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
        return None;
    }
    let mut words = 2 * std::mem::size_of::<libc::cpu_set_t>() / 8;
    while words <= (1 << 16) / 64 {
        let mut mask = vec![0u64; words];
        // SAFETY: the pointer and size describe `mask`, which outlives the call; the
        // kernel writes at most that many bytes of bits.
        let rc = unsafe {
            libc::sched_getaffinity(0, words * 8, mask.as_mut_ptr().cast::<libc::cpu_set_t>())
        };
        if rc == 0 {
            let n: u32 = mask.iter().map(|w| w.count_ones()).sum();
            return (n > 0).then_some(n);
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return None;
        }
        words *= 2;
    }
    None
}

fn host_memory() -> Figure<u64> {
    // SAFETY: `info` is plain data that sysinfo fills; zeroed is valid.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live sysinfo struct.
    if unsafe { libc::sysinfo(&mut info) } == 0 {
        // `totalram` is a C `unsigned long`: 32 bits on some targets.
        #[allow(clippy::useless_conversion)]
        let total = u64::from(info.totalram).saturating_mul(u64::from(info.mem_unit.max(1)));
        if total > 0 {
            return Figure::known(total, Source::Host("sysinfo totalram"));
        }
    }
    Figure::unknown(format!(
        "sysinfo failed: {}",
        std::io::Error::last_os_error()
    ))
}

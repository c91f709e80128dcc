//! The whole probe, then the plan, over a `/proc` and `/sys/fs/cgroup` tree whose files
//! hold what the fuzzer chooses: v2, v1 and hybrid layouts, a namespaced path, garbage
//! in any file, any Lambda memory size. The probe never panics and the plan it feeds
//! is always usable (a thread count from 1 to 1024, a positive core count). A v2 or v1
//! tree seen from inside a cgroup namespace (the process at `/`, the mount's root
//! `/../..`, found by searching for it) gives the figures the same tree gives seen
//! from outside.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use coldstart_bootstrap::{Env, Plan, Probe};

#[derive(Arbitrary, Debug)]
enum Layout {
    V2,
    V1,
    Hybrid,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    layout: Layout,
    /// `/proc/self/cgroup`; `None` writes the usual lines for the layout, with the
    /// process at `/svc/app`. Files hold any bytes, text or not, as a fixture tree's
    /// may.
    proc_cgroup: Option<&'a [u8]>,
    /// The same tree also seen with the usual files from outside and from a cgroup
    /// namespace rooted at `/svc/app`, whose figures must be the same.
    namespaced: bool,
    mountinfo: Option<&'a [u8]>,
    /// `cpu.max`, `memory.max`, `memory.high`, `cpu.cfs_quota_us`, `cpu.cfs_period_us`,
    /// `memory.limit_in_bytes`, `memory.stat`, at the process's cgroup and its parent.
    leaf: [Option<&'a [u8]>; 7],
    parent: [Option<&'a [u8]>; 7],
    lambda_memory: Option<&'a str>,
    host_cpus: u32,
    host_memory: u64,
}

const V2_FILES: [&str; 3] = ["cpu.max", "memory.max", "memory.high"];
const V1_CPU_FILES: [&str; 2] = ["cpu.cfs_quota_us", "cpu.cfs_period_us"];
const V1_MEMORY_FILES: [&str; 2] = ["memory.limit_in_bytes", "memory.stat"];

/// One directory per fuzzing process, on tmpfs when there is one.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("coldstart-fuzz-probe-{}", std::process::id()))
    })
}

fn write(root: &Path, path: &str, contents: Option<&[u8]>) {
    if let Some(contents) = contents {
        let p = root.join(path);
        fs::create_dir_all(p.parent().expect("a file in a directory")).expect("scratch dir");
        fs::write(p, contents).expect("scratch file");
    }
}

/// The files of one cgroup directory (`at`), v2 or v1 per the layout.
fn cgroup_files(root: &Path, layout: &Layout, at: &str, files: &[Option<&[u8]>; 7]) {
    match layout {
        Layout::V2 => {
            for (name, contents) in V2_FILES.iter().zip(&files[..3]) {
                write(root, &format!("sys/fs/cgroup{at}/{name}"), *contents);
            }
            write(
                root,
                &format!("sys/fs/cgroup{at}/cgroup.type"),
                Some(b"domain\n"),
            );
        }
        Layout::V1 | Layout::Hybrid => {
            for (name, contents) in V1_CPU_FILES.iter().zip(&files[3..5]) {
                write(
                    root,
                    &format!("sys/fs/cgroup/cpu,cpuacct{at}/{name}"),
                    *contents,
                );
            }
            for (name, contents) in V1_MEMORY_FILES.iter().zip(&files[5..]) {
                write(root, &format!("sys/fs/cgroup/memory{at}/{name}"), *contents);
            }
        }
    }
}

/// The usual `/proc/self/cgroup` for `layout`, with the process at `at`.
fn usual_proc_cgroup(layout: &Layout, at: &str) -> String {
    match layout {
        Layout::V2 => format!("0::{at}\n"),
        Layout::V1 => format!("4:memory:{at}\n3:cpu,cpuacct:{at}\n1:name=systemd:/\n"),
        Layout::Hybrid => format!("4:memory:{at}\n3:cpu,cpuacct:{at}\n0::/\n"),
    }
}

/// How the process sees the tree.
#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    /// With the input's `/proc/self/cgroup` and mountinfo, where it gives them.
    AsGiven,
    /// The usual files, mountinfo included, the process at `/svc/app`.
    Outside,
    /// From a cgroup namespace rooted at `/svc/app`: the process at `/`, the mounts'
    /// root two levels up (`/../..`).
    Inside,
}

/// The tree of `input` at `root`, seen as `view` says, and its probe.
fn probe(root: &Path, input: &Input<'_>, env: &Env, view: View) -> coldstart_bootstrap::Budget {
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root).expect("scratch dir");
    if view != View::AsGiven {
        let (at, mount_root) = match view {
            View::Inside => ("/", "/../.."),
            _ => ("/svc/app", "/"),
        };
        write(
            root,
            "proc/self/cgroup",
            Some(usual_proc_cgroup(&input.layout, at).as_bytes()),
        );
        let mounts = match input.layout {
            Layout::V2 => {
                format!("41 31 0:38 {mount_root} /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
            }
            _ => format!(
                "41 31 0:38 {mount_root} /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                 42 31 0:39 {mount_root} /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
            ),
        };
        write(root, "proc/self/mountinfo", Some(mounts.as_bytes()));
        // What the namespace search looks for: the process in its cgroup's list.
        let procs = format!("{}\n", std::process::id());
        let dirs: &[&str] = match input.layout {
            Layout::V2 => &[""],
            _ => &["/cpu,cpuacct", "/memory"],
        };
        for dir in dirs {
            write(
                root,
                &format!("sys/fs/cgroup{dir}/svc/app/cgroup.procs"),
                Some(procs.as_bytes()),
            );
        }
    } else {
        let usual = usual_proc_cgroup(&input.layout, "/svc/app");
        write(
            root,
            "proc/self/cgroup",
            Some(input.proc_cgroup.unwrap_or(usual.as_bytes())),
        );
        write(root, "proc/self/mountinfo", input.mountinfo);
    }
    match input.layout {
        Layout::V2 => write(
            root,
            "sys/fs/cgroup/cgroup.controllers",
            Some(b"cpu memory\n"),
        ),
        Layout::V1 | Layout::Hybrid => {
            write(root, "sys/fs/cgroup/cpu,cpuacct/release_agent", Some(b"\n"));
            write(root, "sys/fs/cgroup/memory/release_agent", Some(b"\n"));
            if matches!(input.layout, Layout::Hybrid) {
                write(
                    root,
                    "sys/fs/cgroup/unified/cgroup.controllers",
                    Some(b"\n"),
                );
            }
        }
    }
    cgroup_files(root, &input.layout, "/svc/app", &input.leaf);
    cgroup_files(root, &input.layout, "/svc", &input.parent);
    Probe::new()
        .root(root)
        .env(env.clone())
        // What the process's affinity mask and MemTotal give: never zero.
        .host(1 + input.host_cpus % 512, input.host_memory.max(1 << 20))
        .run()
}

libfuzzer_sys::fuzz_target!(|input: Input<'_>| {
    let root = scratch();
    let env = Env::fixed(
        input
            .lambda_memory
            .map(|m| ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", m)),
    );
    let budget = probe(root, &input, &env, View::AsGiven);
    if input.namespaced && !matches!(input.layout, Layout::Hybrid) {
        let outside = probe(root, &input, &env, View::Outside);
        let inside = probe(root, &input, &env, View::Inside);
        assert_eq!(
            (inside.cpu_cores.value, inside.memory_bytes.value),
            (outside.cpu_cores.value, outside.memory_bytes.value),
            "seen from the namespace: {inside:?}\nfrom outside: {outside:?}"
        );
    }
    if let Some(cores) = budget.cpu_cores.value {
        assert!(cores.is_finite() && cores > 0.0, "{budget:?}");
    }
    let plan = Plan::from_budget(&budget, &Default::default(), &env)
        .unwrap_or_else(|e| panic!("no setting is given, yet the plan failed: {e}\n{budget:?}"));
    let workers = plan.worker_threads.value;
    assert!(
        (1..=1024).contains(&workers),
        "{workers} workers for {budget:?}"
    );
    assert!(
        plan.cores.is_finite() && plan.cores > 0.0,
        "{} cores for {budget:?}",
        plan.cores
    );
});

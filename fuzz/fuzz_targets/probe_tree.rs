//! The whole probe, then the plan, over a `/proc` and `/sys/fs/cgroup` tree whose files
//! hold what the fuzzer chooses: v2, v1 and hybrid layouts, a namespaced path, garbage
//! in any file, any Lambda memory size. The probe never panics and the plan it feeds
//! is always usable (a thread count from 1 to 1024, a positive core count).
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
    /// process at `/svc/app` (or `/../svc/app`, as in a cgroup namespace). Files hold
    /// any bytes, text or not, as a fixture tree's may.
    proc_cgroup: Option<&'a [u8]>,
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

libfuzzer_sys::fuzz_target!(|input: Input<'_>| {
    let root = scratch();
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root).expect("scratch dir");

    let at = if input.namespaced {
        "/../svc/app"
    } else {
        "/svc/app"
    };
    let usual = match input.layout {
        Layout::V2 => format!("0::{at}\n"),
        Layout::V1 => format!("4:memory:{at}\n3:cpu,cpuacct:{at}\n1:name=systemd:/\n"),
        Layout::Hybrid => format!("4:memory:{at}\n3:cpu,cpuacct:{at}\n0::/\n"),
    };
    write(
        root,
        "proc/self/cgroup",
        Some(input.proc_cgroup.unwrap_or(usual.as_bytes())),
    );
    write(root, "proc/self/mountinfo", input.mountinfo);
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

    let env = Env::fixed(
        input
            .lambda_memory
            .map(|m| ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", m)),
    );
    let budget = Probe::new()
        .root(root)
        .env(env.clone())
        // What the process's affinity mask and MemTotal give: never zero.
        .host(1 + input.host_cpus % 512, input.host_memory.max(1 << 20))
        .run();
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

//! The probe against fixture directory trees.
//!
//! cgroup v2 controllers cannot be had on the machines this suite runs on (they have
//! cgroup v1 controllers and an empty v2 mount), so v2, hybrid, namespaced and garbage
//! layouts are test doubles: directory trees shaped like `/proc` and `/sys/fs/cgroup`.
//! The real v1 hierarchy is covered end to end in `cli/tests/cgroups.rs`.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::fs;
use std::path::{Path, PathBuf};

use coldstart_bootstrap::{CgroupVersion, Env, Platform, Probe, Source};

const HOST_CPUS: u32 = 8;
const HOST_MEMORY: u64 = 16 << 30;

struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        let root =
            std::env::temp_dir().join(format!("coldstart-fixture-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let t = Tree { root };
        // A process in the kernel's initial cgroup namespace, as on a host, unless
        // the test says otherwise.
        t.link("/proc/self/ns/cgroup", "cgroup:[4026531835]");
        t
    }

    /// The process in a cgroup namespace of its own (a container's).
    fn private_namespace(&self) -> &Self {
        fs::remove_file(self.place("/proc/self/ns/cgroup")).unwrap();
        self.link("/proc/self/ns/cgroup", "cgroup:[4026532513]")
    }

    /// Where `path` (absolute, as the process sees it) is in the tree, its directory
    /// made.
    fn place(&self, path: &str) -> PathBuf {
        let p = self.root.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }

    fn file(&self, path: &str, contents: &str) -> &Self {
        fs::write(self.place(path), contents).unwrap();
        self
    }

    /// A FIFO at `path`, with no writer.
    fn fifo(&self, path: &str) -> &Self {
        coldstart_test_support::fifo(&self.place(path));
        self
    }

    /// A symbolic link at `path` to `target`.
    fn link(&self, path: &str, target: &str) -> &Self {
        std::os::unix::fs::symlink(target, self.place(path)).unwrap();
        self
    }

    fn dir(&self, path: &str) -> &Self {
        fs::create_dir_all(self.root.join(path.trim_start_matches('/'))).unwrap();
        self
    }

    /// A pure v2 host with the process at `cgroup`.
    fn v2(name: &str, cgroup: &str) -> Tree {
        let t = Tree::new(name);
        t.file("/proc/self/cgroup", &format!("0::{cgroup}\n"));
        t.file(
            "/sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        t.dir(&format!("/sys/fs/cgroup{cgroup}"));
        // Every non-root v2 cgroup has cgroup.type.
        let mut dir = PathBuf::from(cgroup);
        while dir.parent().is_some() {
            if dir != Path::new("/") {
                t.file(
                    &format!("/sys/fs/cgroup{}/cgroup.type", dir.display()),
                    "domain\n",
                );
            }
            dir.pop();
        }
        t
    }

    fn probe(&self) -> coldstart_bootstrap::Budget {
        self.probe_with(Env::fixed::<&str, &str>([]))
    }

    fn probe_with(&self, env: Env) -> coldstart_bootstrap::Budget {
        probe_at(&self.root, env)
    }

    /// The probe, on a thread: `None` when it has not returned within 20 s.
    fn probe_within_20s(&self) -> Option<coldstart_bootstrap::Budget> {
        let root = self.root.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(probe_at(&root, Env::fixed::<&str, &str>([])));
        });
        rx.recv_timeout(std::time::Duration::from_secs(20)).ok()
    }
}

/// The probe of the tree at `root`, with `env` and the fixed host figures.
fn probe_at(root: &Path, env: Env) -> coldstart_bootstrap::Budget {
    Probe::new()
        .root(root)
        .env(env)
        .host(HOST_CPUS, HOST_MEMORY)
        .run()
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn ends_with(source: &Source, suffix: &str) -> bool {
    match source {
        Source::CgroupV1(p) | Source::CgroupV2(p) => p.ends_with(suffix),
        _ => false,
    }
}

#[test]
fn v2_leaf_limit() {
    let t = Tree::v2("leaf", "/app");
    t.file("/sys/fs/cgroup/app/cpu.max", "50000 100000\n")
        .file("/sys/fs/cgroup/app/memory.max", "67108864\n");
    let b = t.probe();
    assert_eq!(b.cgroup_version, CgroupVersion::V2);
    assert_eq!(b.cpu_cores.value, Some(0.5));
    assert!(
        matches!(&b.cpu_cores.source, Source::CgroupV2(p) if p.ends_with("/app/cpu.max")),
        "{:?}",
        b.cpu_cores
    );
    assert_eq!(b.memory_bytes.value, Some(64 << 20));
}

#[test]
fn v2_limit_on_a_parent_only() {
    let t = Tree::v2("parent", "/kubepods/pod1/ctr");
    t.file("/sys/fs/cgroup/kubepods/pod1/cpu.max", "25000 100000\n")
        .file("/sys/fs/cgroup/kubepods/pod1/memory.max", "134217728\n")
        .file("/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n")
        .file("/sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "max\n")
        .file("/sys/fs/cgroup/kubepods/cpu.max", "400000 100000\n");
    let b = t.probe();
    assert_eq!(b.cpu_cores.value, Some(0.25));
    assert!(ends_with(&b.cpu_cores.source, "/pod1/cpu.max"));
    assert_eq!(b.memory_bytes.value, Some(128 << 20));
}

#[test]
fn v2_max_everywhere_means_the_host() {
    let t = Tree::v2("max", "/svc");
    t.file("/sys/fs/cgroup/svc/cpu.max", "max 100000\n")
        .file("/sys/fs/cgroup/svc/memory.max", "max\n")
        .file("/sys/fs/cgroup/svc/memory.high", "max\n");
    let b = t.probe();
    assert_eq!(b.cpu_cores.value, Some(f64::from(HOST_CPUS)));
    assert_eq!(b.cpu_cores.source, Source::Given);
    assert_eq!(b.memory_bytes.value, Some(HOST_MEMORY));
}

#[test]
fn v2_one_field_cpu_max_uses_the_default_period() {
    let t = Tree::v2("onefield", "/svc");
    t.file("/sys/fs/cgroup/svc/cpu.max", "150000\n");
    assert_eq!(t.probe().cpu_cores.value, Some(1.5));
}

#[test]
fn v2_memory_high_below_memory_max_wins() {
    let t = Tree::v2("high", "/svc");
    t.file("/sys/fs/cgroup/svc/memory.max", "268435456\n")
        .file("/sys/fs/cgroup/svc/memory.high", "201326592\n");
    let b = t.probe();
    assert_eq!(b.memory_bytes.value, Some(192 << 20));
    assert!(ends_with(&b.memory_bytes.source, "memory.high"));
}

#[test]
fn v2_missing_files_set_no_limit() {
    let t = Tree::v2("missing", "/svc/inner");
    let b = t.probe();
    assert_eq!(b.cpu_cores.value, Some(f64::from(HOST_CPUS)));
    assert_eq!(b.memory_bytes.value, Some(HOST_MEMORY));
}

#[test]
fn v2_paths_with_spaces() {
    let t = Tree::v2("spaces", "/my app/svc 1");
    t.file("/sys/fs/cgroup/my app/svc 1/cpu.max", "75000 100000\n");
    assert_eq!(t.probe().cpu_cores.value, Some(0.75));
}

#[test]
fn garbage_makes_the_figure_unknown_with_the_reason() {
    let cases = [
        ("cpu.max", "50000 0\n", "period is 0"),
        ("cpu.max", "-50000 100000\n", "is negative"),
        (
            "cpu.max",
            "99999999999999999999999 100000\n",
            "does not fit in 64 bits",
        ),
        ("cpu.max", "\u{1}\u{2}garbage\n", "is not a number"),
        ("cpu.max", "", "file is empty"),
        // Found by the `probe_tree` fuzz target: it used to be 0 cores.
        ("cpu.max", "0\n", "quota is 0"),
    ];
    for (i, (file, contents, reason)) in cases.into_iter().enumerate() {
        let t = Tree::v2(&format!("garbage{i}"), "/svc");
        t.file(&format!("/sys/fs/cgroup/svc/{file}"), contents);
        let b = t.probe();
        assert_eq!(b.cpu_cores.value, None, "{contents:?}");
        match &b.cpu_cores.source {
            Source::Unknown(why) => {
                assert!(why.contains(reason) && why.contains("cpu.max"), "{why}")
            }
            other => panic!("{contents:?} gave {other:?}"),
        }
        // The other figure and the fallbacks are still there.
        assert_eq!(b.memory_bytes.value, Some(HOST_MEMORY));
        assert_eq!(b.host_cpus.value, Some(HOST_CPUS));
    }
    let t = Tree::v2("garbage-mem", "/svc");
    t.file("/sys/fs/cgroup/svc/memory.max", "-1\n");
    assert!(
        matches!(t.probe().memory_bytes.source, Source::Unknown(ref why) if why.contains("negative"))
    );
}

#[test]
fn unreadable_file_is_unknown_not_a_panic() {
    let t = Tree::v2("unreadable", "/svc");
    t.dir("/sys/fs/cgroup/svc/cpu.max"); // a directory: read fails with EISDIR
    let b = t.probe();
    assert!(
        matches!(&b.cpu_cores.source, Source::Unknown(why) if why.starts_with("cannot read")),
        "{:?}",
        b.cpu_cores
    );
}

#[test]
fn garbage_proc_self_cgroup_means_no_cgroups() {
    let t = Tree::new("garbage-proc");
    t.file("/proc/self/cgroup", "this is not\na cgroup file\n::\n1:2\n");
    let b = t.probe();
    assert_eq!(b.cgroup_version, CgroupVersion::None);
    assert_eq!(b.cpu_cores.value, Some(f64::from(HOST_CPUS)));
}

/// A tree `doctor --root` is pointed at can hold what the kernel's files never are: a
/// FIFO with no writer (which held the open forever), `/dev/zero` (read until memory
/// ran out). Each is a figure that is unknown or absent, at once.
#[test]
fn fifos_and_endless_files_do_not_hold_the_probe() {
    let t = Tree::new("fifo-proc");
    t.fifo("/proc/self/cgroup");
    let b = t
        .probe_within_20s()
        .expect("a FIFO as /proc/self/cgroup held the probe");
    assert!(
        matches!(&b.cpu_cores.source, Source::Unknown(why) if why.contains("not a regular file")),
        "{:?}",
        b.cpu_cores
    );

    let t = Tree::v2("fifo-limits", "/svc");
    t.fifo("/sys/fs/cgroup/svc/cpu.max");
    t.link("/sys/fs/cgroup/svc/memory.max", "/dev/zero");
    let b = t
        .probe_within_20s()
        .expect("a FIFO or /dev/zero as a limit held the probe");
    assert!(
        matches!(&b.cpu_cores.source, Source::Unknown(_)),
        "{:?}",
        b.cpu_cores
    );
    assert!(
        matches!(&b.memory_bytes.source, Source::Unknown(_)),
        "{:?}",
        b.memory_bytes
    );

    // Found nowhere usual, the mount is looked for in mountinfo: endless here.
    let t = Tree::new("zero-mountinfo");
    t.file("/proc/self/cgroup", "0::/svc\n");
    t.link("/proc/self/mountinfo", "/dev/zero");
    let b = t
        .probe_within_20s()
        .expect("/dev/zero as mountinfo held the probe");
    // Said as a file that could not be read, naming it: it was taken for a file
    // without cgroup mounts ("no cgroup2 mount found").
    assert!(
        matches!(&b.memory_bytes.source, Source::Unknown(why)
            if why.contains("cannot read") && why.contains("/proc/self/mountinfo")),
        "{:?}",
        b.memory_bytes
    );
}

#[test]
fn no_proc_at_all_means_host_figures() {
    let t = Tree::new("empty");
    let b = t.probe();
    assert_eq!(b.cgroup_version, CgroupVersion::None);
    assert_eq!(b.memory_bytes.value, Some(HOST_MEMORY));
}

#[test]
fn hybrid_takes_v1_controllers() {
    let t = Tree::new("hybrid");
    t.file(
        "/proc/self/cgroup",
        "9:name=systemd:/\n4:memory:/svc\n1:cpu,cpuacct:/svc\n0::/\n",
    )
    .file("/sys/fs/cgroup/unified/cgroup.controllers", "\n")
    .file("/sys/fs/cgroup/cpu,cpuacct/release_agent", "\n")
    .file("/sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_quota_us", "50000\n")
    .file(
        "/sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_period_us",
        "100000\n",
    )
    .file(
        "/sys/fs/cgroup/memory/svc/memory.limit_in_bytes",
        "67108864\n",
    );
    let b = t.probe();
    assert_eq!(b.cgroup_version, CgroupVersion::Hybrid);
    assert_eq!(b.cpu_cores.value, Some(0.5));
    assert!(matches!(&b.cpu_cores.source, Source::CgroupV1(p) if p.ends_with("cpu.cfs_quota_us")));
    assert_eq!(b.memory_bytes.value, Some(64 << 20));
}

#[test]
fn hybrid_with_controllers_on_v2_reads_v2() {
    let t = Tree::new("hybrid-v2");
    t.file("/proc/self/cgroup", "9:name=systemd:/x\n0::/svc\n")
        .file("/sys/fs/cgroup/unified/cgroup.controllers", "cpu memory\n")
        .file("/sys/fs/cgroup/unified/svc/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/unified/svc/cpu.max", "20000 100000\n");
    let b = t.probe();
    assert_eq!(b.cgroup_version, CgroupVersion::Hybrid);
    assert_eq!(b.cpu_cores.value, Some(0.2));
    assert!(matches!(&b.cpu_cores.source, Source::CgroupV2(_)));
}

/// systemd (or any supervisor) inside a container with a private cgroup namespace:
/// the service's cgroup is below the namespace's root, and the container's limits are
/// on that root, which is the mount. They were skipped as a hierarchy root's.
#[test]
fn v2_limits_on_the_namespace_root_above_a_service() {
    let t = Tree::v2("nsroot", "/system.slice/app.service");
    // The mount is a cgroup of its own (it has cgroup.type): the container's.
    t.file("/sys/fs/cgroup/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/cpu.max", "50000 100000\n")
        .file("/sys/fs/cgroup/memory.max", "268435456\n")
        .file(
            "/sys/fs/cgroup/system.slice/app.service/memory.max",
            "max\n",
        );
    let b = t.probe();
    assert_eq!(b.cpu_cores.value, Some(0.5));
    assert_eq!(b.memory_bytes.value, Some(256 << 20));
    // On the host's real root (no cgroup.type) nothing is read there.
    let host = Tree::v2("hostroot", "/system.slice/app.service");
    host.file("/sys/fs/cgroup/memory.max", "268435456\n");
    assert_eq!(host.probe().memory_bytes.value, Some(HOST_MEMORY));
}

#[test]
fn v1_hierarchical_memory_limit_covers_invisible_ancestors() {
    // A container without a cgroup namespace: its own directory is bind-mounted at the
    // usual place, /proc/self/cgroup shows the host path, mountinfo says so.
    let t = Tree::new("docker-v1");
    t.file("/proc/self/cgroup", "4:memory:/docker/abc\n")
        .file(
            "/proc/self/mountinfo",
            "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
        )
        .file("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
        .file(
            "/sys/fs/cgroup/memory/memory.stat",
            "cache 0\nrss 0\nhierarchical_memory_limit 100663296\nhierarchical_memsw_limit 9223372036854771712\n",
        );
    let b = t.probe();
    assert_eq!(b.cgroup_version, CgroupVersion::V1);
    assert_eq!(b.memory_bytes.value, Some(96 << 20));
    assert!(ends_with(&b.memory_bytes.source, "memory.stat"));
}

#[test]
fn namespace_whose_mount_lies_above_is_found_by_search() {
    // `unshare --cgroup` without a new mount: /proc/self/cgroup says `/`, mountinfo
    // shows the mount root as `/../..`, the real cgroup is two levels down.
    let t = Tree::new("cgroupns");
    t.private_namespace()
        .file("/proc/self/cgroup", "0::/\n")
        .file(
            "/proc/self/mountinfo",
            "41 31 0:38 /../.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        )
        .file("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
        .file("/sys/fs/cgroup/other/x/cgroup.procs", "1\n2\n")
        .file(
            "/sys/fs/cgroup/svc/ns/cgroup.procs",
            &format!("17\n{}\n", std::process::id()),
        )
        .file("/sys/fs/cgroup/svc/ns/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/svc/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/svc/cpu.max", "30000 100000\n")
        .file("/sys/fs/cgroup/svc/ns/memory.max", "33554432\n");
    let b = t.probe();
    assert_eq!(b.cpu_cores.value, Some(0.3));
    assert_eq!(b.memory_bytes.value, Some(32 << 20));
}

/// systemd (or any supervisor) in a container with a private cgroup namespace and the
/// host's whole hierarchy mounted: `/proc/self/cgroup` names the service from the
/// namespace's root (`/init.scope`), and the host has a cgroup of that name (its own
/// PID 1's), with no limits. It was read as this process's, and the container's
/// limits never seen; the cgroup that holds the process is found through mountinfo.
#[test]
fn a_private_namespace_over_the_hosts_hierarchy_is_not_read_as_the_host() {
    let t = Tree::new("ns-over-host");
    t.private_namespace()
        .file("/proc/self/cgroup", "0::/init.scope\n")
        .file(
            "/proc/self/mountinfo",
            "41 31 0:38 /../.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        )
        .file("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
        .file("/sys/fs/cgroup/init.scope/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/init.scope/cpu.max", "max 100000\n")
        .file("/sys/fs/cgroup/init.scope/cgroup.procs", "1\n")
        .file("/sys/fs/cgroup/kube/ctr/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/kube/ctr/cpu.max", "50000 100000\n")
        .file("/sys/fs/cgroup/kube/ctr/memory.max", "268435456\n")
        .file("/sys/fs/cgroup/kube/ctr/init.scope/cgroup.type", "domain\n")
        .file(
            "/sys/fs/cgroup/kube/ctr/init.scope/cgroup.procs",
            &format!("{}\n", std::process::id()),
        );
    let b = t.probe();
    assert_eq!(b.cpu_cores.value, Some(0.5), "{:?}", b.cpu_cores);
    assert_eq!(
        b.memory_bytes.value,
        Some(256 << 20),
        "{:?}",
        b.memory_bytes
    );
    // In the initial namespace, the same leaf is the process's: no limit, the host's.
    let host = Tree::new("host-init-scope");
    host.file("/proc/self/cgroup", "0::/init.scope\n")
        .file("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
        .file("/sys/fs/cgroup/init.scope/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/init.scope/cpu.max", "max 100000\n");
    assert_eq!(host.probe().cpu_cores.value, Some(f64::from(HOST_CPUS)));
}

/// A search that gives up before it finds the process's cgroup says it gave up, not
/// that no cgroup holds the process: 513 cgroups one level down are one more than
/// the search looks at.
#[test]
fn a_namespace_search_that_gives_up_says_so() {
    let t = Tree::new("cgroupns-many");
    t.private_namespace()
        .file("/proc/self/cgroup", "0::/\n")
        .file(
            "/proc/self/mountinfo",
            "41 31 0:38 /.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        )
        .file("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
    for n in 0..513 {
        t.file(&format!("/sys/fs/cgroup/c{n:03}/cgroup.procs"), "1\n");
    }
    let b = t.probe();
    let why = format!("{:?}", b.cpu_cores);
    assert_eq!(b.cpu_cores.value, None, "{why}");
    assert!(why.contains("gave up after 512 cgroups"), "{why}");
    // One fewer, and the search ends by saying none holds the process.
    let t = Tree::new("cgroupns-some");
    t.private_namespace()
        .file("/proc/self/cgroup", "0::/\n")
        .file(
            "/proc/self/mountinfo",
            "41 31 0:38 /.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        )
        .file("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
        .file("/sys/fs/cgroup/c000/cgroup.procs", "1\n");
    let why = format!("{:?}", t.probe().cpu_cores);
    assert!(why.contains("no cgroup 1 level(s) below"), "{why}");
}

/// A process above its namespace's root (it entered another's cgroup namespace) sees
/// its cgroup as `/..`: the directory that names is not its cgroup, and its limits
/// are not the process's. Joined onto the mount, `/sys/fs/cgroup/..` read the limits
/// of a child cgroup.
#[test]
fn a_cgroup_outside_the_namespace_is_unknown_not_a_childs_limit() {
    let t = Tree::new("above-ns");
    t.file("/proc/self/cgroup", "0::/..\n")
        .file("/sys/fs/cgroup/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/cpu.max", "10000 100000\n")
        .file("/sys/fs/cgroup/memory.max", "1048576\n")
        .file("/sys/fs/cpu.max", "10000 100000\n")
        .file("/sys/fs/memory.max", "1048576\n");
    let b = t.probe();
    assert_eq!(b.cpu_cores.value, None, "{:?}", b.cpu_cores);
    assert_eq!(b.memory_bytes.value, None, "{:?}", b.memory_bytes);
    let why = format!("{:?}", b.cpu_cores);
    assert!(
        why.contains("outside this process's cgroup namespace"),
        "{why}"
    );
}

/// The search below a mount that lies above the namespace reads all of a long
/// `cgroup.procs`, past one read's buffer, to this process, listed last. (The kernel
/// hands such a list out in pieces shorter than asked for before its end: that a short
/// read is not taken for the end is `read_rest_reads_pieces_to_the_end` in
/// `probe/read.rs`. A FIFO stood in for the kernel here until a tree's files had to be
/// regular ones.)
#[test]
fn the_namespace_search_reads_a_long_list_of_processes_to_its_end() {
    let t = Tree::new("cgroupns-long");
    t.private_namespace()
        .file("/proc/self/cgroup", "0::/\n")
        .file(
            "/proc/self/mountinfo",
            "41 31 0:38 /../.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        )
        .file("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
        .file("/sys/fs/cgroup/svc/ns/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/svc/cgroup.type", "domain\n")
        .file("/sys/fs/cgroup/svc/cpu.max", "30000 100000\n");
    // 600 other processes first: more than one read's 4 KiB, this one's pid past them.
    let pid = std::process::id();
    let procs: String = (0..600)
        .map(|p| format!("{}\n", 1_000_000 + p))
        .chain([format!("{pid}\n")])
        .collect();
    t.file("/sys/fs/cgroup/svc/ns/cgroup.procs", &procs);
    let b = t.probe();
    assert_eq!(b.cpu_cores.value, Some(0.3), "{:?}", b.cpu_cores);
}

#[test]
fn mount_at_an_unusual_place_is_found_in_mountinfo() {
    let t = Tree::new("unusual");
    t.file("/proc/self/cgroup", "0::/svc\n")
        .file(
            "/proc/self/mountinfo",
            "22 1 0:5 / /cg rw - cgroup2 none rw\n",
        )
        .file("/cg/svc/cgroup.type", "domain\n")
        .file("/cg/svc/memory.max", "1048576000\n");
    assert_eq!(t.probe().memory_bytes.value, Some(1_048_576_000));
}

#[test]
fn lambda_gives_a_cpu_share_and_memory() {
    let t = Tree::new("lambda");
    let b = t.probe_with(Env::fixed([("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")]));
    assert_eq!(b.platform, Platform::AwsLambda);
    assert_eq!(b.memory_bytes.value, Some(1024 << 20));
    assert_eq!(
        b.memory_bytes.source,
        Source::Lambda("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    );
    let cores = b.cpu_cores.value.unwrap();
    assert!((cores - 1024.0 / 1769.0).abs() < 1e-9, "{cores}");
}

/// Lambda lists v1 controllers in `/proc/self/cgroup` and mounts none: the cgroup
/// figures cannot be read, and the function's memory size stands (it was thrown
/// away, and the plan sized for the host).
#[test]
fn lambda_without_mounted_cgroups_keeps_its_own_figures() {
    let t = Tree::new("lambda-unmounted");
    t.file(
        "/proc/self/cgroup",
        "4:memory:/sandbox-root-x/sandbox-y
3:cpu,cpuacct:/sandbox-root-x/sandbox-y
",
    )
    .file(
        "/proc/self/mountinfo",
        "20 1 0:19 / / rw,relatime - ext4 /dev/root rw
",
    );
    let b = t.probe_with(Env::fixed([("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")]));
    assert_eq!(
        b.memory_bytes.value,
        Some(512 << 20),
        "{:?}",
        b.memory_bytes
    );
    let cores = b.cpu_cores.value.unwrap();
    assert!((cores - 512.0 / 1769.0).abs() < 1e-9, "{cores}");
    // A function larger than the host: the host's figures are the smaller ones, and
    // stand (they were an unknown figure, the cgroup's reason given).
    let big = Probe::new()
        .root(&t.root)
        .env(Env::fixed([("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")]))
        .host(2, 1 << 30)
        .run();
    assert_eq!(big.cpu_cores.value, Some(2.0), "{:?}", big.cpu_cores);
    assert_eq!(
        big.memory_bytes.value,
        Some(1 << 30),
        "{:?}",
        big.memory_bytes
    );
    // Off Lambda, the same unreadable cgroup is an unknown figure with its reason.
    let off = t.probe();
    assert_eq!(off.memory_bytes.value, None);
    assert!(matches!(off.memory_bytes.source, Source::Unknown(_)));
}

#[test]
fn lambda_with_a_tighter_cgroup_keeps_the_minimum() {
    let t = Tree::v2("lambda-cgroup", "/fn");
    t.file("/sys/fs/cgroup/fn/memory.max", "268435456\n")
        .file("/sys/fs/cgroup/fn/cpu.max", "10000 100000\n");
    let b = t.probe_with(Env::fixed([("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")]));
    assert_eq!(b.memory_bytes.value, Some(256 << 20));
    assert_eq!(b.cpu_cores.value, Some(0.1));
    assert_eq!(b.platform, Platform::AwsLambda);
}

#[test]
fn malformed_lambda_memory_is_unknown_with_the_variable_named() {
    let t = Tree::new("lambda-bad");
    for (bad, said) in [
        ("lots", "is not a whole number of MB"),
        ("-5", "is not a whole number of MB"),
        (
            "0",
            "is out of range: from 1 to 1099511627775 MB (Lambda sets 128 to 10240)",
        ),
        (
            "99999999999999",
            "is out of range: from 1 to 1099511627775 MB (Lambda sets 128 to 10240)",
        ),
    ] {
        let b = t.probe_with(Env::fixed([("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", bad)]));
        assert!(
            matches!(&b.memory_bytes.source, Source::Unknown(why) if why.ends_with(&format!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=\"{bad}\" {said}"))),
            "{:?}",
            b.memory_bytes
        );
    }
}

/// A bad period is reported as the period file's, not the quota's.
#[test]
fn v1_garbage_names_the_file_that_holds_it() {
    let cases = [
        ("50000\n", "0\n", "cpu.cfs_period_us: the CFS period is 0"),
        (
            "50000\n",
            "soon\n",
            "cpu.cfs_period_us: `soon` is not a number",
        ),
        ("-7\n", "100000\n", "cpu.cfs_quota_us: `-7` is negative"),
        ("0\n", "100000\n", "cpu.cfs_quota_us: the CPU quota is 0"),
        // A blank the kernel never writes, not an ASCII one: `-1` then is not the
        // kernel's "no limit" (it was, by a check of its own that trimmed Unicode
        // blanks, where the parser trims ASCII ones).
        ("-1\u{85}\n", "100000\n", "cpu.cfs_quota_us:"),
    ];
    for (i, (quota, period, reason)) in cases.into_iter().enumerate() {
        let t = Tree::new(&format!("v1-garbage{i}"));
        t.file("/proc/self/cgroup", "3:cpu,cpuacct:/svc\n")
            .file("/sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_quota_us", quota)
            .file("/sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_period_us", period);
        match t.probe().cpu_cores.source {
            Source::Unknown(why) => assert!(why.contains(reason), "{why}"),
            other => panic!("{quota:?} / {period:?} gave {other:?}"),
        }
    }
}

#[test]
fn v1_controllers_mounted_under_another_name_are_found_in_mountinfo() {
    let t = Tree::new("v1-other-name");
    t.file("/proc/self/cgroup", "3:cpu,cpuacct:/svc\n")
        .file(
            "/proc/self/mountinfo",
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n",
        )
        .file("/sys/fs/cgroup/cpu/release_agent", "\n")
        .file("/sys/fs/cgroup/cpu/svc/cpu.cfs_quota_us", "150000\n")
        .file("/sys/fs/cgroup/cpu/svc/cpu.cfs_period_us", "100000\n");
    let b = t.probe();
    assert_eq!(b.cpu_cores.value, Some(1.5), "{:?}", b.cpu_cores);
}

#[test]
fn v1_process_at_the_root_of_a_container_mount() {
    // A container with its own cgroup mounted at the usual place: the process is at
    // `/` and the mount is not a hierarchy root (no release_agent).
    let t = Tree::new("v1-container-root");
    t.file("/proc/self/cgroup", "4:memory:/\n")
        .file("/sys/fs/cgroup/memory/cgroup.procs", "1\n")
        .file("/sys/fs/cgroup/memory/memory.limit_in_bytes", "134217728\n");
    let b = t.probe();
    assert_eq!(
        b.memory_bytes.value,
        Some(128 << 20),
        "{:?}",
        b.memory_bytes
    );
}

#[test]
fn v1_a_bare_directory_at_the_usual_place_is_no_cgroup() {
    // A directory where the hierarchy would be mounted, with none of a cgroup's files
    // (the hierarchy is mounted elsewhere): mountinfo says where, and the limit there
    // is read; it was taken for a cgroup with no limit, the host's memory then.
    let t = Tree::new("v1-bare-dir");
    t.file("/proc/self/cgroup", "4:memory:/\n")
        .file("/sys/fs/cgroup/memory/.keep", "")
        .file(
            "/proc/self/mountinfo",
            "40 31 0:35 / /cgroups/memory rw - cgroup cgroup rw,memory\n",
        )
        .file("/cgroups/memory/cgroup.procs", "1\n")
        .file("/cgroups/memory/memory.limit_in_bytes", "67108864\n");
    let b = t.probe();
    assert_eq!(b.memory_bytes.value, Some(64 << 20), "{:?}", b.memory_bytes);
}

/// Many named hierarchies with long paths (a systemd host with a few dozen) make
/// `/proc/self/cgroup` longer than the probe's stack buffer; the limits on the lines
/// past it were lost without a word.
#[test]
fn v1_limits_listed_past_the_first_4_kib_are_read() {
    let t = Tree::new("v1-long-proc-cgroup");
    let long_path = format!("/{}", "x".repeat(200));
    let mut listed: String = (20..40)
        .map(|id| format!("{id}:name=n{id}:{long_path}\n"))
        .collect();
    assert!(listed.len() > 4096);
    listed.push_str("4:memory:/svc\n3:cpu,cpuacct:/svc\n");
    t.file("/proc/self/cgroup", &listed);
    quarter_cpu_and_64_mib_at_svc(&t);
}

/// A cgroup path is any bytes; one that is not UTF-8 cut the file short at it, and
/// the limits listed after it were lost without a word.
#[test]
fn a_path_that_is_not_utf8_leaves_the_other_lines_whole() {
    let t = Tree::new("v1-non-utf8-path");
    let mut listed = b"9:name=x:/caf\xe9\n".to_vec();
    listed.extend_from_slice(b"4:memory:/svc\n3:cpu,cpuacct:/svc\n");
    let path = t.root.join("proc/self/cgroup");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, listed).unwrap();
    quarter_cpu_and_64_mib_at_svc(&t);
}

/// Gives `/svc` in the v1 cpu and memory hierarchies 0.25 CPU and 64 MiB, and checks
/// that the probe of `t` (whose `/proc/self/cgroup` lists `/svc` somewhere) finds both.
fn quarter_cpu_and_64_mib_at_svc(t: &Tree) {
    t.file("/sys/fs/cgroup/memory/release_agent", "\n")
        .file(
            "/sys/fs/cgroup/memory/svc/memory.limit_in_bytes",
            "67108864\n",
        )
        .file("/sys/fs/cgroup/cpu,cpuacct/release_agent", "\n")
        .file("/sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_quota_us", "25000\n")
        .file(
            "/sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_period_us",
            "100000\n",
        );
    let b = t.probe();
    assert_eq!(b.cgroup_version, CgroupVersion::V1);
    assert_eq!(b.memory_bytes.value, Some(64 << 20), "{:?}", b.memory_bytes);
    assert_eq!(b.cpu_cores.value, Some(0.25), "{:?}", b.cpu_cores);
}

/// The task limit (`pids.max`), read only for the message when a thread is refused:
/// the smallest number from the process's cgroup up, in v1 and in v2 (a fixture tree,
/// which needs no v2 controllers on the host); `max` everywhere, or no pids controller, is
/// none.
#[test]
fn the_task_limit_is_the_smallest_pids_max_on_the_way_up() {
    let t = Tree::new("pids-v1");
    t.file(
        "/proc/self/cgroup",
        "5:pids:/app/worker\n4:memory:/app/worker\n",
    )
    .file("/sys/fs/cgroup/pids/app/pids.max", "64\n")
    .file("/sys/fs/cgroup/pids/app/worker/pids.max", "max\n");
    let (tasks, source) = Probe::new().root(&t.root).task_limit().unwrap();
    assert_eq!(tasks, 64);
    assert!(
        source
            .to_string()
            .ends_with("/sys/fs/cgroup/pids/app/pids.max"),
        "{source}"
    );

    let t = Tree::v2("pids-v2", "/svc");
    t.file("/sys/fs/cgroup/svc/pids.max", "12\n")
        .file("/sys/fs/cgroup/pids.max", "max\n");
    let (tasks, source) = Probe::new().root(&t.root).task_limit().unwrap();
    assert_eq!(tasks, 12);
    assert!(source.to_string().starts_with("cgroup v2 "), "{source}");

    let t = Tree::new("pids-none");
    t.file("/proc/self/cgroup", "4:memory:/app\n").file(
        "/sys/fs/cgroup/memory/app/memory.limit_in_bytes",
        "1048576\n",
    );
    assert_eq!(Probe::new().root(&t.root).task_limit(), None);

    // `max` at every level: no limit.
    let t = Tree::new("pids-max");
    t.file("/proc/self/cgroup", "5:pids:/app/worker\n")
        .file("/sys/fs/cgroup/pids/app/pids.max", "max\n")
        .file("/sys/fs/cgroup/pids/app/worker/pids.max", "max\n");
    assert_eq!(Probe::new().root(&t.root).task_limit(), None);
}

//! The probe in real cgroup v1 hierarchies, end to end: `cargo-coldstart doctor --json`
//! started inside cgroups that this test creates (cgroups-rs) and removes.
//!
//! Needs root. Outside CI a non-root run skips with a printed reason; under `CI=true`
//! it fails, because CI must exercise the real thing.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::process::Command;

use cargo_coldstart::cgroup::{Limits, TempCgroup};
use serde_json::Value;

const DOCTOR: &str = env!("CARGO_BIN_EXE_cargo-coldstart");

fn can_run(test: &str) -> bool {
    cargo_coldstart::cgroup::can_create(test).unwrap()
}

fn name(test: &str) -> String {
    format!("coldstart-test-{}-{test}", std::process::id())
}

fn doctor(mut command: Command) -> Value {
    let out =
        coldstart_test_support::output_within(&mut command, std::time::Duration::from_secs(60));
    assert!(
        out.status.success(),
        "doctor failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("doctor prints JSON")
}

fn doctor_in(cgroup: &TempCgroup, wrapper: &[&str], env: &[(&str, &str)]) -> Value {
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(DOCTOR);
            c
        }
        None => Command::new(DOCTOR),
    };
    command
        .args(["doctor", "--json"])
        .env_remove("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .envs(env.iter().copied());
    cgroup.join_before_exec(&mut command).expect("join");
    doctor(command)
}

const HALF_CPU_64M: Limits = Limits {
    cpus: Some(0.5),
    memory_bytes: Some(64 << 20),
};

#[test]
fn quota_and_memory_limit_of_the_processs_own_cgroup() {
    if !can_run("quota_and_memory_limit") {
        return;
    }
    let cg = TempCgroup::create(&name("own"), HALF_CPU_64M).unwrap();
    let v = doctor_in(&cg, &[], &[]);
    assert_eq!(v["limits"]["cpu_cores"], 0.5, "{v:#}");
    assert_eq!(v["limits"]["memory_bytes"], 67_108_864u64, "{v:#}");
    assert_eq!(v["limits"]["sources"]["cpu_cores"]["kind"], "cgroup_v1");
    assert_eq!(v["plan"]["strategy"], "minimal");
    assert_eq!(v["plan"]["flavor"], "current_thread");
    assert_eq!(v["plan"]["worker_threads"], 1);
}

/// The kernel refuses a child's CPU quota above its parent's; what the builder had
/// made by then is removed, not left behind.
#[test]
fn a_limit_the_kernel_refuses_leaves_no_cgroup_behind() {
    if !can_run("refused") {
        return;
    }
    let parent_name = name("refused-parent");
    let parent = TempCgroup::create(&parent_name, HALF_CPU_64M).unwrap();
    let child_name = format!("{parent_name}/child");
    let refused = TempCgroup::create(
        &child_name,
        Limits {
            cpus: Some(1.0),
            memory_bytes: None,
        },
    );
    let err = format!("{:#}", refused.err().expect("a quota above the parent's"));
    assert!(
        err.contains(&format!("cannot create cgroup {child_name}")),
        "{err}"
    );
    for controller in ["cpu", "memory"] {
        let layout = std::path::Path::new("/sys/fs/cgroup").join(controller);
        // The parent is there: the layout is the one looked in.
        assert!(
            layout.join(&parent_name).is_dir(),
            "no v1 {controller} hierarchy"
        );
        let dir = layout.join(&child_name);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    drop(parent);
}

/// A cgroup that is gone by the time a program is started (removed by someone else)
/// is said at once, naming the file, before any child is made.
#[test]
fn a_program_that_cannot_join_the_cgroup_is_a_clear_error() {
    if !can_run("cannot-join") {
        return;
    }
    let cg = TempCgroup::create(&name("gone"), HALF_CPU_64M).unwrap();
    for procs in cg.procs_files() {
        std::fs::remove_dir(procs.parent().unwrap()).unwrap();
    }
    let target = cargo_coldstart::measure::Target::new("true", "/bin/true");
    let err = format!(
        "{:#}",
        cargo_coldstart::measure::run_once(&target, Some(&cg)).unwrap_err()
    );
    assert!(err.contains("cannot open /sys/fs/cgroup/"), "{err}");
    assert!(
        err.contains("gone/cgroup.procs: No such file or directory"),
        "{err}"
    );
}

#[test]
fn nested_limit_on_the_parent_only() {
    if !can_run("nested") {
        return;
    }
    let parent_name = name("parent");
    let parent = TempCgroup::create(&parent_name, HALF_CPU_64M).unwrap();
    let child = TempCgroup::create(
        &format!("{parent_name}/child"),
        Limits {
            cpus: None,
            memory_bytes: None,
        },
    )
    .unwrap();
    let v = doctor_in(&child, &[], &[]);
    assert_eq!(v["limits"]["cpu_cores"], 0.5, "{v:#}");
    assert_eq!(v["limits"]["memory_bytes"], 67_108_864u64, "{v:#}");
    let source = v["limits"]["sources"]["cpu_cores"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        source.ends_with(&format!("{parent_name}/cpu.cfs_quota_us")),
        "{source}"
    );
    drop(child);
    drop(parent);
}

#[test]
fn cgroup_namespace_whose_paths_read_slash_dot_dot() {
    if !can_run("cgroupns") {
        return;
    }
    let cg = TempCgroup::create(
        &name("ns"),
        Limits {
            cpus: Some(0.75),
            memory_bytes: Some(96 << 20),
        },
    )
    .unwrap();
    // Inside `unshare --cgroup`, /proc/self/cgroup says `/` and mountinfo shows the
    // host's cgroup mounts with a root of `/..`.
    let v = doctor_in(&cg, &["unshare", "--cgroup"], &[]);
    assert_eq!(v["limits"]["cpu_cores"], 0.75, "{v:#}");
    assert_eq!(v["limits"]["memory_bytes"], 100_663_296u64, "{v:#}");
}

#[test]
fn affinity_restricted_with_taskset() {
    // Needs no root and no cgroup: only the tool (util-linux).
    let test = "affinity_restricted_with_taskset";
    let Some(taskset) = coldstart_test_support::tool(test, "taskset", &["--version"]) else {
        return;
    };
    // A quota below one CPU would be the figure, whatever the mask.
    let mut plain = Command::new(DOCTOR);
    plain.args(["doctor", "--json"]);
    let unpinned = doctor(plain);
    if unpinned["limits"]["cpu_cores"]
        .as_f64()
        .is_some_and(|c| c < 1.0)
    {
        let why = "a CPU quota below one CPU holds this process";
        assert!(!coldstart_test_support::in_ci(), "{test}: {why}");
        coldstart_test_support::skipped(test, why);
        return;
    }
    // The first CPU this process may run on (CPU 0 may not be one of them).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap();
    let first: String = allowed
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let mut command = Command::new(taskset);
    command.args(["-c", &first, DOCTOR, "doctor", "--json"]);
    let v = doctor(command);
    assert_eq!(v["limits"]["cpu_cores"], 1.0, "{v:#}");
    assert_eq!(
        v["limits"]["sources"]["cpu_cores"]["kind"],
        "sched_getaffinity"
    );
    assert_eq!(v["limits"]["host_cpus"], 1);
}

#[test]
fn lambda_inside_a_real_cgroup_keeps_the_minimum() {
    if !can_run("lambda-cgroup") {
        return;
    }
    let cg = TempCgroup::create(&name("lambda"), HALF_CPU_64M).unwrap();
    let v = doctor_in(&cg, &[], &[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]);
    assert_eq!(v["limits"]["platform"], "aws-lambda");
    assert_eq!(
        v["limits"]["memory_bytes"], 67_108_864u64,
        "the cgroup is tighter: {v:#}"
    );
    let cores = v["limits"]["cpu_cores"].as_f64().unwrap();
    assert!(
        (cores - 128.0 / 1769.0).abs() < 1e-9,
        "Lambda's share is tighter: {cores}"
    );
    assert_eq!(v["limits"]["sources"]["cpu_cores"]["kind"], "lambda");
}

#[test]
fn lambda_without_a_cgroup_limit() {
    let mut command = Command::new(DOCTOR);
    command
        .args(["doctor", "--json"])
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769");
    let v = doctor(command);
    assert_eq!(v["limits"]["cpu_cores"], 1.0, "{v:#}");
    assert_eq!(v["limits"]["memory_bytes"], 1769u64 << 20);
    assert_eq!(v["plan"]["strategy"], "minimal", "exactly one vCPU");
}

#[test]
fn invalid_variable_is_one_line_and_exit_78() {
    let out = Command::new(DOCTOR)
        .args(["doctor"])
        .env("COLDSTART_STRATEGY", "fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: set COLDSTART_STRATEGY to one of `minimal`, `balanced`, `throughput`, got `fast`\n"
    );
}

#[test]
fn a_start_up_report_setting_the_service_refuses_is_refused_too() {
    // Not part of the plan, but the service ends with exit 78 on it at start-up.
    let out = Command::new(DOCTOR)
        .args(["doctor"])
        .env("COLDSTART_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: set COLDSTART_LOG to one of `off`, `debug`, got `info`\n"
    );
}

#[test]
fn runs_as_a_cargo_subcommand() {
    // `cargo coldstart doctor` runs `cargo-coldstart coldstart doctor`.
    let out = Command::new(DOCTOR)
        .args(["coldstart", "doctor", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["plan"]["worker_threads"].as_u64().unwrap() >= 1);
    let bad = Command::new(DOCTOR)
        .args(["doctor", "--jsn"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("unknown option `--jsn` for doctor; the options are: --json, --root DIR")
    );
    // An option given twice, or a value for a flag, is a usage error too.
    for (args, said) in [
        (
            &["doctor", "--root", "/", "--root=/tmp"][..],
            "--root is given twice; give it once",
        ),
        (&["doctor", "--json=false"][..], "--json takes no value"),
    ] {
        let bad = Command::new(DOCTOR).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
}

/// Output to a pipe whose reader is gone (`| head`, a closed terminal) ends the tool
/// quietly: on stdout with 141, as a program that `SIGPIPE` killed; on stderr the
/// message is lost and the exit code is still the command's. `print!` and `eprintln!`
/// panicked there (exit 101, a backtrace where stderr was still open).
#[test]
fn a_closed_pipe_ends_it_quietly() {
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    for args in [&["--help"][..], &["doctor"], &["doctor", "--json"]] {
        let out = Command::new(DOCTOR)
            .args(args)
            .stdout(closed())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    let out = Command::new(DOCTOR)
        .args(["doctor", "--jsn"])
        .stderr(closed())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The exit codes are in `--help` (and the README), with `--` in compare's usage.
#[test]
fn help_gives_the_exit_codes() {
    let out = Command::new(DOCTOR).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let codes = help.split("EXIT STATUS:").nth(1).unwrap_or_default();
    for code in ["0 ", "1 ", "2 ", "78 ", "101 ", "128+N ", "141 "] {
        assert!(codes.contains(&format!("    {code}")), "{code}: {help}");
    }
    assert!(help.contains("[--] <A> <B>"), "{help}");
}

/// An argument that is not UTF-8 is named by its place as the user typed it, under
/// cargo too (which passes `coldstart` first).
#[test]
fn an_argument_that_is_not_utf8_is_named_by_its_place() {
    use std::os::unix::ffi::OsStrExt as _;
    let odd = std::ffi::OsStr::from_bytes(b"\xff");
    for prefix in [&[][..], &["coldstart"]] {
        let out = Command::new(DOCTOR)
            .args(prefix)
            .args(["doctor", "--root"])
            .arg(odd)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("argument 3 ("), "{prefix:?}: {stderr}");
    }
}

#[test]
fn doctor_reads_a_fixture_root() {
    let root = coldstart_test_support::temp_dir("doctor-root");
    std::fs::create_dir_all(root.join("proc/self")).unwrap();
    std::fs::create_dir_all(root.join("sys/fs/cgroup/svc")).unwrap();
    std::fs::write(root.join("proc/self/cgroup"), "0::/svc\n").unwrap();
    std::fs::write(
        root.join("sys/fs/cgroup/cgroup.controllers"),
        "cpu memory\n",
    )
    .unwrap();
    std::fs::write(root.join("sys/fs/cgroup/svc/cgroup.type"), "domain\n").unwrap();
    std::fs::write(root.join("sys/fs/cgroup/svc/cpu.max"), "50000 0\n").unwrap();
    let mut command = Command::new(DOCTOR);
    command.args(["doctor", "--json", "--root"]).arg(&root);
    let v = doctor(command);
    let mut equals = Command::new(DOCTOR);
    equals
        .args(["doctor", "--json"])
        .arg(format!("--root={}", root.display()));
    assert_eq!(doctor(equals), v, "--root=DIR is --root DIR");
    assert_eq!(v["limits"]["cpu_cores"], Value::Null, "{v:#}");
    assert_eq!(v["limits"]["sources"]["cpu_cores"]["kind"], "unknown");
    let why = v["limits"]["sources"]["cpu_cores"]["detail"]
        .as_str()
        .unwrap();
    assert!(why.ends_with("svc/cpu.max: the CFS period is 0"), "{why}");
    assert!(
        v["plan"]["reasons"]["strategy"]["text"]
            .as_str()
            .unwrap()
            .contains("budget unknown; host figure used"),
        "{v:#}"
    );
    // A root that is no tree to probe is said, not probed as a host without cgroups.
    let empty = coldstart_test_support::temp_dir("doctor-empty-root");
    let file = empty.join("a-file");
    std::fs::write(&file, "").unwrap();
    for (given, said) in [
        (&*empty, "it has no proc directory"),
        (file.as_path(), "not a directory"),
        (std::path::Path::new("/no/such/root"), "no such directory"),
    ] {
        let out = Command::new(DOCTOR)
            .args(["doctor", "--root"])
            .arg(given)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(said), "{given:?}: {stderr}");
    }
}

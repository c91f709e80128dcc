//! Registrations in a library crate, across the builds users make: debug and release
//! with whole-program LTO, each linked by Rust's default linker and, where that is LLD
//! (x86_64 Linux from Rust 1.90, the suite's toolchain), by GNU ld too, which
//! `-Clinker-features=-lld` asks for there (elsewhere the flag is refused, and GNU ld is
//! the default). Builds into its own target directory, since the running `cargo test`
//! holds the main one.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use coldstart_test_support::{output_within, status_within};

/// The longest one build may take: the first builds every dependency into a target
/// directory of its own, with whole-program LTO in `release-lto`, on a machine maybe
/// as small as two cores and busy with the rest of the suite. Generous, since only a
/// build that hangs should reach it.
const BUILD_WITHIN: Duration = Duration::from_secs(30 * 60);

/// The longest `readelf` or a built program may take; both end at once.
const RUN_WITHIN: Duration = Duration::from_secs(60);

fn target_dir() -> PathBuf {
    // .../target/<profile>/deps/link-<hash> -> .../target/link-check
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().join("link-check")
}

fn build(bin: &str, profile: &str, opt_out_of_lld: bool) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "rustc",
        "-q",
        "-p",
        "init-demo",
        "--bin",
        bin,
        "--profile",
        profile,
    ])
    .arg("--target-dir")
    .arg(target_dir());
    if opt_out_of_lld {
        cmd.args(["--", "-Clinker-features=-lld"]);
    }
    let status = status_within(&mut cmd, BUILD_WITHIN);
    assert!(
        status.success(),
        "building {bin} ({profile}, opt_out_of_lld={opt_out_of_lld})"
    );
    let dir = if profile == "dev" { "debug" } else { profile };
    target_dir().join(dir).join(bin)
}

/// Which linker wrote the binary: LLD leaves its name in `.comment`, GNU ld does not.
fn linked_by_lld(binary: &Path) -> bool {
    let out = output_within(
        Command::new("readelf").args(["-p", ".comment"]).arg(binary),
        RUN_WITHIN,
    );
    assert!(out.status.success(), "readelf (binutils) is needed");
    String::from_utf8_lossy(&out.stdout).contains("Linker: LLD")
}

fn run(binary: &Path) -> String {
    let out = output_within(
        Command::new(binary).env_remove("COLDSTART_PROFILE"),
        RUN_WITHIN,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn library_registrations_survive_lto_and_both_linkers_when_the_crate_is_named() {
    // What this toolchain links with by default, learnt from a build, not assumed.
    let lld_by_default = linked_by_lld(&build("linked", "dev", false));
    // The suite's toolchain (1.95) on x86_64 Linux links with LLD: both linkers tested.
    if coldstart_test_support::in_ci()
        && cfg!(all(
            target_arch = "x86_64",
            target_os = "linux",
            target_env = "gnu"
        ))
    {
        assert!(
            lld_by_default,
            "the suite's toolchain should link with LLD here"
        );
    }
    let opt_outs: &[bool] = if lld_by_default {
        &[false, true]
    } else {
        &[false]
    };
    for profile in ["dev", "release-lto"] {
        for &opt_out_of_lld in opt_outs {
            let gnu_ld = opt_out_of_lld || !lld_by_default;
            let linked = build("linked", profile, opt_out_of_lld);
            assert_eq!(
                linked_by_lld(&linked),
                !gnu_ld,
                "{profile}: wrong linker used"
            );
            assert_eq!(
                run(&linked),
                "init init_demo::SHARED\ninit init_demo::library_warm_up\n\
                 registered init_demo::SHARED\nregistered init_demo::library_warm_up\n",
                "{profile}, gnu_ld={gnu_ld}"
            );
            // The documented pitfall, so the docs stay true: never named, never linked.
            let unlinked = build("unlinked", profile, opt_out_of_lld);
            assert_eq!(
                run(&unlinked),
                "0 registrations\n",
                "{profile}, gnu_ld={gnu_ld}"
            );
        }
    }
}

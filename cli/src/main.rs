//! `cargo coldstart` (or `cargo-coldstart`): see `--help`.

use std::process::ExitCode;

use cargo_coldstart::{build, compare, doctor, profile};

const HELP: &str = "\
cargo coldstart: start-up tooling for coldstart services

USAGE:
    cargo coldstart doctor [--json] [--root DIR]
    cargo coldstart build [--init-profile FILE | --no-init-profile]
                          [cargo build arguments: -p, --bin, --target, --features, ...]
    cargo coldstart compare [--runs N] [--cpus X] [--memory SIZE] [--url URL] [--json]
                            [--lambda [--cargo-lambda PATH] [--package-dir DIR] [--warm N]]
                            [--] <A> <B>
    cargo coldstart profile [--out FILE] [--url URL | --lambda-event FILE] [--wait DURATION] -- <command...>

COMMANDS:
    doctor    Print the CPU and memory budget this process would see, and the plan
              coldstart would make from it, with the source of every figure and the
              reason for every decision. COLDSTART_* variables are honoured.
    build     cargo build with a start-up-tuned release profile (`coldstart`: fat LTO,
              one codegen unit, symbols stripped; see BENCHMARKS.md), set on the
              command line (Cargo.toml is not edited); prints each binary, its size and
              the plain release size. --release is implied. Embeds an init
              profile in every #[coldstart::main] it builds: the caller's
              COLDSTART_EMBED_PROFILE, else ./coldstart.profile if there is one.
    compare   Cold-start two programs (paths, names on PATH, or quoted commands,
              split at spaces) in alternating runs: exec to first response, RSS and
              threads then (of the process started: a wrapper script's own), and
              how each exits on SIGTERM; medians, min, max, the ratio B/A and its
              spread over paired runs. Each program gets a free port in PORT; what
              it starts is killed with it at the end of its run.
    profile   Start the command with COLDSTART_PROFILE_OUT, send its first request,
              wait for the profile, stop it, and save the profile (default
              coldstart.profile): which #[coldstart::init] registrations the first
              request needed, and how long each took.

OPTIONS (doctor):
    --json        One JSON object (fields documented in the README)
    --root DIR    Probe DIR/proc and DIR/sys instead of the real ones (the host's
                  CPUs and memory still come from this kernel)

OPTIONS (build):
    --init-profile F    Embed the init profile F instead
    --no-init-profile   Embed none (profile arguments of #[coldstart::main] still apply)

OPTIONS (compare):
    --runs N          Runs of each program (default 20), after one warm-up run of
                      each that is not recorded
    --cpus X          Run every process in a new cgroup with X CPUs (root; removed after)
    --memory SIZE     ... and a memory limit such as 64M (with --lambda, also the
                      function's AWS_LAMBDA_FUNCTION_MEMORY_SIZE; by default the
                      caller's AWS_LAMBDA_FUNCTION_MEMORY_SIZE, else 512 MB)
    --url URL         The first request: http://127.0.0.1:PORT/PATH, PORT a number the
                      programs listen on or $PORT (default http://127.0.0.1:$PORT/)
    --json            One JSON object (fields documented in the README)
    --lambda          Lambda functions: a queued invocation at the Runtime API emulator
                      (cargo lambda watch), exec to the caller's answer, init duration
                      (exec to first /next) and --warm N warm invocations (default 5)
    --warm N          With --lambda: warm invocations after each cold one (default 5,
                      0 to 1000)
    --cargo-lambda P  cargo-lambda (default COLDSTART_TEST_CARGO_LAMBDA, else PATH)
    --package-dir D   A Cargo package for the emulator to read (default .)

OPTIONS (profile):
    --out FILE          Where to save the profile (default coldstart.profile)
    --url URL           The first request, as for compare (default http://127.0.0.1:$PORT/)
    --lambda-event F    A Lambda function: invoke it with the JSON event in F through
                        the emulator (--cargo-lambda, --package-dir as for compare)
    --wait DURATION     How long after the first answer the program has to write its
                        profile, its deferred inits included (default 10s; a whole
                        number with ms, s, m or h, up to 1h)

    -h, --help        This text

EXIT STATUS:
    0        Done
    1        The work failed: a program that did not start or answer, a profile
             not written
    2        A usage error: an unknown command or option, a bad or missing value
    78       doctor: a bad runtime setting (the Settings table's COLDSTART_*
             variables, COLDSTART_LOG) or configuration file; a bad telemetry
             value is listed under problems, and doctor still ends 0
    101 ...  build: cargo's own code, whatever it is (101 for a compile error, 1
             for arguments cargo refused), or 128 plus the signal that killed cargo
    128+N    compare, profile: stopped by signal N (130 after Ctrl-C), once what
             they started is stopped and their cgroups removed
    141      stdout closed by its reader (`| head`)
";

/// Writes `text` to stdout. Where stdout is gone (a pipe whose reader has left, as
/// `| head` does) the process ends quietly with 141, as a program killed by `SIGPIPE`
/// does; on another error (a full disk) it says so and ends with 1. `print!` would
/// panic there with a backtrace.
fn out(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        coldstart_bootstrap::say!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    let mut given: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // `cargo coldstart doctor` runs `cargo-coldstart coldstart doctor`.
    if given.first().is_some_and(|a| a == "coldstart") {
        given.remove(0);
    }
    let mut args = Vec::new();
    for (n, arg) in given.into_iter().enumerate() {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(arg) => {
                coldstart_bootstrap::say!(
                    "error: argument {} ({}) is not UTF-8; cargo coldstart takes its paths, commands and options as UTF-8",
                    n + 1,
                    arg.to_string_lossy()
                );
                return ExitCode::from(2);
            }
        }
    }
    match args.first().map(String::as_str) {
        Some("doctor") => doctor_command(&args[1..]),
        Some("compare") => compare_command(&args[1..]),
        Some("profile") => profile_command(&args[1..]),
        Some("build") => build_command(&args[1..]),
        None | Some("-h" | "--help" | "help") => {
            out(HELP);
            ExitCode::SUCCESS
        }
        Some(other) => {
            coldstart_bootstrap::say!(
                "error: unknown command `{other}`; the commands are: doctor, build, compare, profile (see --help)"
            );
            ExitCode::from(2)
        }
    }
}

fn build_command(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        out(HELP);
        return ExitCode::SUCCESS;
    }
    // A usage error, or an init profile that cannot be embedded, is told apart from a
    // failed build: exit 2, as the other commands' bad inputs.
    let parsed = build::parse(args)
        .and_then(|(choice, cargo_args)| Ok((build::init_profile(&choice)?, choice, cargo_args)));
    let (embedded, choice, cargo_args) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            coldstart_bootstrap::say!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match build::run(&choice, embedded, &cargo_args) {
        Ok((_, report)) => {
            cargo_coldstart::interrupt::wait_if_interrupted();
            out(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A signal's clean-up killed cargo: it ends the process with 128 plus the
            // signal, and the build it stopped is no failure to report.
            cargo_coldstart::interrupt::wait_if_interrupted();
            coldstart_bootstrap::say!("error: {e:#}");
            // cargo's own code where cargo failed, whatever it is (101 for a compile
            // error, 1 for arguments cargo refused), 128 plus the signal where it was
            // killed; 1 for this tool's own failures.
            ExitCode::from(
                e.downcast_ref::<build::CargoFailed>()
                    .map_or(1, build::CargoFailed::code),
            )
        }
    }
}

fn profile_command(args: &[String]) -> ExitCode {
    let before_command = args.iter().position(|a| a == "--").unwrap_or(args.len());
    if args[..before_command]
        .iter()
        .any(|a| a == "-h" || a == "--help")
    {
        out(HELP);
        return ExitCode::SUCCESS;
    }
    let options = match profile::parse(args) {
        Ok(o) => o,
        Err(e) => {
            coldstart_bootstrap::say!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match profile::run(&options) {
        Ok(table) => {
            cargo_coldstart::interrupt::wait_if_interrupted();
            out(&table);
            ExitCode::SUCCESS
        }
        Err(e) => {
            cargo_coldstart::interrupt::wait_if_interrupted();
            cargo_coldstart::measure::end_progress_line();
            coldstart_bootstrap::say!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn compare_command(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        out(HELP);
        return ExitCode::SUCCESS;
    }
    let options = match compare::parse(args).and_then(|o| compare::may_run(&o).map(|()| o)) {
        Ok(o) => o,
        Err(e) => {
            coldstart_bootstrap::say!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match compare::run(&options) {
        Ok(report) => {
            // A Ctrl-C during the last run: the clean-up ends the process with 130,
            // and a run it killed is no result to print.
            cargo_coldstart::interrupt::wait_if_interrupted();
            out(&format!("{report}\n"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            cargo_coldstart::interrupt::wait_if_interrupted();
            cargo_coldstart::measure::end_progress_line();
            coldstart_bootstrap::say!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn doctor_command(args: &[String]) -> ExitCode {
    let mut options = doctor::Options::default();
    if let Some(flag) = args.iter().find(|a| a.starts_with("--json=")) {
        coldstart_bootstrap::say!("error: --json takes no value, got `{flag}`");
        return ExitCode::from(2);
    }
    let args = compare::split_equals(args);
    let mut args = args.iter();
    let mut seen = Vec::new();
    while let Some(arg) = args.next() {
        if arg.starts_with("--")
            && let Err(e) = cargo_coldstart::measure::once(&mut seen, arg)
        {
            coldstart_bootstrap::say!("error: {e}");
            return ExitCode::from(2);
        }
        match arg.as_str() {
            "--json" => options.json = true,
            "--root" => match args.next() {
                // A mistyped fixture tree would otherwise probe as a host without
                // cgroups, indistinguishable from a real answer.
                Some(dir) if !std::path::Path::new(dir).is_dir() => {
                    let what = if std::path::Path::new(dir).exists() {
                        "not a directory"
                    } else {
                        "no such directory"
                    };
                    coldstart_bootstrap::say!("error: --root {dir}: {what}");
                    return ExitCode::from(2);
                }
                Some(dir) if !std::path::Path::new(dir).join("proc").is_dir() => {
                    coldstart_bootstrap::say!(
                        "error: --root {dir}: it has no proc directory; a tree to probe has proc/self/cgroup, and the cgroup files under sys/fs/cgroup"
                    );
                    return ExitCode::from(2);
                }
                Some(dir) => options.root = Some(dir.into()),
                None => {
                    coldstart_bootstrap::say!("error: --root needs a directory");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                out(HELP);
                return ExitCode::SUCCESS;
            }
            other => {
                coldstart_bootstrap::say!(
                    "error: unknown option `{other}` for doctor; the options are: --json, --root DIR"
                );
                return ExitCode::from(2);
            }
        }
    }
    match doctor::render(&options) {
        Ok(text) => {
            out(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            coldstart_bootstrap::say!("error: {e}");
            ExitCode::from(78)
        }
    }
}

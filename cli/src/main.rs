//! `cargo coldstart` (or `cargo-coldstart`): see `--help`.

use std::process::ExitCode;

use cargo_coldstart::doctor;

const HELP: &str = "\
cargo coldstart: start-up tooling for coldstart services

USAGE:
    cargo coldstart doctor [--json] [--root DIR]

COMMANDS:
    doctor    Print the CPU and memory budget this process would see, and the plan
              coldstart would make from it, with the source of every figure and the
              reason for every decision. COLDSTART_* variables are honoured.

OPTIONS (doctor):
    --json        One JSON object (fields documented in the README)
    --root DIR    Probe DIR/proc and DIR/sys instead of the real ones
    -h, --help    This text
";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo coldstart doctor` runs `cargo-coldstart coldstart doctor`.
    if args.first().is_some_and(|a| a == "coldstart") {
        args.remove(0);
    }
    match args.first().map(String::as_str) {
        Some("doctor") => doctor_command(&args[1..]),
        None | Some("-h" | "--help" | "help") => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown command `{other}`; the commands are: doctor (see --help)");
            ExitCode::from(2)
        }
    }
}

fn doctor_command(args: &[String]) -> ExitCode {
    let mut options = doctor::Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--root" => match args.next() {
                Some(dir) => options.root = Some(dir.into()),
                None => {
                    eprintln!("error: --root needs a directory");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                print!("{HELP}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!(
                    "error: unknown option `{other}` for doctor; the options are: --json, --root DIR"
                );
                return ExitCode::from(2);
            }
        }
    }
    match doctor::render(&options) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(78)
        }
    }
}

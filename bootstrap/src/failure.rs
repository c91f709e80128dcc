/*!
Start-up failures told to whoever must hear of them before the program exits.

A program that cannot start (a bad setting, a failed init, a runtime that cannot be
built, a `main` that ends before it serves) prints one line and exits. On AWS Lambda
that is not enough: the Runtime API must be told (`/runtime/init/error`), or the
caller only ever sees a timeout. The Lambda integration registers a hook here at link
time; without it the slice is empty and reporting costs one length check.
*/

/// Hooks told that start-up failed, just before the program exits.
#[linkme::distributed_slice]
pub static ON_START_FAILURE: [fn(&StartFailure<'_>)];

/// Why the program could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A setting has a bad value (exit code 78).
    Config,
    /// A critical `#[coldstart::init]` failed or panicked (exit code 70).
    Init,
    /// The runtime could not be built (exit code 71).
    Runtime,
    /// The program's own code failed or ended before it started serving.
    Program,
}

impl Cause {
    /// A short type name for error reports, such as `Runtime.ConfigError`.
    pub fn error_type(self) -> &'static str {
        match self {
            Cause::Config => "Runtime.ConfigError",
            Cause::Init => "Runtime.InitError",
            Cause::Runtime => "Runtime.StartError",
            Cause::Program => "Runtime.ExitError",
        }
    }
}

/// A start-up failure: its cause and the one-line message the program printed.
#[derive(Debug, Clone, Copy)]
pub struct StartFailure<'a> {
    /// What failed.
    pub cause: Cause,
    /// The message, as printed on stderr (without the `coldstart: ` prefix).
    pub message: &'a str,
}

/// Tells every hook in [`ON_START_FAILURE`]; a hook that panics is skipped.
pub fn report(cause: Cause, message: &str) {
    let failure = StartFailure { cause, message };
    for hook in ON_START_FAILURE {
        if std::panic::catch_unwind(|| hook(&failure)).is_err() {
            crate::say!("coldstart: a start-failure hook panicked");
        }
    }
}

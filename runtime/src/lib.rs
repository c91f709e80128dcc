/*!
The runtime half of coldstart: builds the tokio runtime the plan asks for, applies the
plan's allocator settings to mimalloc, optionally prewarms runtime threads, and keeps
the start-up timeline.

It must never start a thread, open a socket or read a file that the plan does not ask
for, and it never panics on anything the environment controls: a bad `COLDSTART_*`
variable ends the program with a one-line message and exit code 78 (`EX_CONFIG`).

Users reach all of this through the `coldstart` crate and `#[coldstart::main]`.
*/
#![warn(missing_docs, unreachable_pub)]

mod alloc;
#[cfg(feature = "tower")]
pub mod first_response;
pub mod init;
pub mod lifecycle;
pub mod panics;
mod start;
mod stopwatch;
pub mod task;
pub mod timeline;

pub use lifecycle::{
    after_first_request, draining, first_request_done, first_response, on_shutdown,
};
pub use start::{
    EXIT_CONFIG, EXIT_OS, StartError, Started, block_on, block_on_in, block_on_test, build,
    load_env, start,
};
pub use timeline::{Phase, Timeline, timeline};

use std::sync::OnceLock;

use coldstart_bootstrap::{Budget, Plan};

static STARTED: OnceLock<(Budget, Plan)> = OnceLock::new();

/// The plan the runtime was built from, once `#[coldstart::main]` has started it.
pub fn plan() -> Option<&'static Plan> {
    STARTED.get().map(|(_, plan)| plan)
}

/// What the probe found at start-up, once `#[coldstart::main]` has started.
pub fn budget() -> Option<&'static Budget> {
    STARTED.get().map(|(budget, _)| budget)
}

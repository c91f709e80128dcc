/*!
The part of coldstart that runs before any runtime exists: it finds out what the
process may really use ([`probe`]) and decides how to run in it ([`plan`]).

This crate must never depend on tokio or start a thread, and must never panic or fail
the program because of what it finds on the machine: an odd, missing or garbage file
is reported as an unknown figure with a reason, and the plan falls back to a safe
default.

```
use coldstart_bootstrap::{Env, Plan, Probe};

let budget = Probe::new().run();
let plan = Plan::from_budget(&budget, &Default::default(), &Env::process())
    .expect("no COLDSTART_* variable is set to a bad value here");
println!("{} worker threads because {}", plan.worker_threads.value, plan.worker_threads.reason);
```
*/
#![warn(missing_docs, unreachable_pub)]

pub mod config;
mod env;
pub mod failure;
mod figure;
pub mod file;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
pub mod init;
pub mod plan;
pub mod probe;
#[doc(hidden)]
pub mod say;

pub use env::{Env, Layer};
pub use figure::{Figure, Source};
pub use plan::{Decision, Flavor, Plan, PlanError, Settings, Strategy};
pub use probe::{Budget, CgroupVersion, Platform, Probe};

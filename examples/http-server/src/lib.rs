/*!
The hello service of the `http-server` example, kept apart from its `main` so the
start-up baselines (bare `#[tokio::main]`, in `benches/baselines`) serve with exactly
the same handler and differ only in how the runtime is started: they compile
`hello.rs` itself, in a package without coldstart.
*/
#![warn(missing_docs, unreachable_pub)]

mod hello;

pub use hello::*;

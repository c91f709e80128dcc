#![doc = include_str!("../../README.md")]
#![warn(missing_docs, unreachable_pub)]

/// Runs an `async fn main` on a tokio runtime planned for the process's real CPU and
/// memory budget. A drop-in for `#[tokio::main]`.
///
/// ```no_run
/// #[coldstart::main]
/// async fn main() -> Result<(), std::io::Error> {
///     println!("{} worker threads", coldstart::plan().map_or(0, |p| p.worker_threads.value));
///     Ok(())
/// }
/// ```
///
/// Arguments (all optional; a `COLDSTART_*` variable overrides the same setting):
///
/// | argument | values | as in |
/// |---|---|---|
/// | `flavor` | `"current_thread"`, `"multi_thread"` | `#[tokio::main]` |
/// | `worker_threads` | 1 to 1024 | `#[tokio::main]` |
/// | `start_paused` | `true`, `false` (needs feature `test-util`); `true` runs the body as `#[coldstart::test]` does: no probe, plan, inits or shutdown hooks | `#[tokio::main]` |
/// | `crate` | a path to this crate, e.g. `"::my_reexport::coldstart"` | `#[tokio::main]` |
/// | `name` | the runtime's name (`Handle::name`), not blank | `#[tokio::main]` |
/// | `strategy` | `"minimal"`, `"balanced"`, `"throughput"` | |
/// | `max_blocking_threads` | 1 to 4096 | |
/// | `thread_stack_size` | bytes, or `"512K"`, `"2M"` (64K to 256M) | |
/// | `prewarm` | `true`, `false` | |
/// | `profile` | an init profile's path, relative to the crate's manifest, embedded at compile time (a bad file is a compile error naming its line; `COLDSTART_PROFILE` overrides it) | |
///
/// An unknown, duplicate or invalid argument is a compile error on that argument.
///
/// # Exits
///
/// A `COLDSTART_*` variable with a bad value ends the program before the body runs,
/// with a one-line message naming the variable and the accepted values, and exit code
/// 78 (`EX_CONFIG`).
pub use coldstart_macros::main;

/// Runs an `async fn` test on a tokio runtime, like `#[tokio::test]`: current_thread
/// unless `flavor = "multi_thread"` or `worker_threads` is given. Tests do not probe
/// or plan, so they behave the same on every machine, and do not run the
/// `#[coldstart::init]` registrations ([`deferred_done`] resolves at once): a test
/// calls what it needs itself.
///
/// ```
/// #[coldstart::test]
/// async fn adds() {
///     assert_eq!(tokio::task::spawn(async { 1 + 1 }).await.unwrap(), 2);
/// }
/// ```
pub use coldstart_macros::test;

/// Registers start-up work that coldstart runs in a profiled order: before the body of
/// `main` if the first request needs it, after the first response if not. A function
/// without a declared phase always runs before the body (it has no reads to profile;
/// the profile only orders it).
///
/// On a function (`fn`, `async fn`, returning `()` or `Result<(), E>` with
/// `E: Display`; an `async fn`'s future must be `Send`, as for `tokio::spawn`), it
/// registers the function. On a static, it turns
/// `static NAME: T = expr;` into a [`Lazy<T>`] initialised at most once: by the plan,
/// or by the first read, whichever comes first, so a value is never read before it
/// exists, whatever the profile says.
///
/// ```
/// use std::collections::HashMap;
///
/// // Every request reads it: the first request needs it.
/// #[coldstart::init]
/// static CONFIG: HashMap<&'static str, &'static str> = HashMap::from([("greeting", "hello")]);
///
/// // The first request does not need it: run it after the first response.
/// #[coldstart::init(deferred)]
/// async fn warm_cache() -> Result<(), std::io::Error> {
///     Ok(())
/// }
///
/// #[coldstart::main]
/// async fn main() {
///     assert_eq!(CONFIG["greeting"], "hello");
/// }
/// ```
///
/// Arguments (all optional):
///
/// | argument | meaning |
/// |---|---|
/// | `critical` | always before the body of `main` |
/// | `deferred` | always after the first response |
/// | (neither) | a function: before the body, ordered by the profile; a static: the profile decides, and without a profile, before the body (the safe default) |
/// | `name = "..."` | the name profiles key on; default: module path and item name |
/// | `fatal` | a failure after the first response ends the program too (a failure before serving always does) |
/// | `crate = "..."` | the path to this crate, if it is re-exported |
///
/// See the README ("Init") for the ordering rule, the profile, failures, and
/// registrations in library crates.
pub use coldstart_macros::init;

mod builder;

pub use builder::Builder;
pub use coldstart_bootstrap::init::{Failure, Lazy, Place};
pub use coldstart_bootstrap::plan::{Origin, Reason};
pub use coldstart_bootstrap::{Budget, Figure, Flavor, Plan, Source, Strategy};
/// Marks the first response done once its body has been sent; place it outermost.
/// See [`coldstart_runtime::first_response()`].
#[cfg(feature = "tower")]
pub use coldstart_runtime::first_response::FirstResponseLayer;
pub use coldstart_runtime::init::{InitReport, deferred_done, profile};
pub use coldstart_runtime::lifecycle::{
    SignalHold, State, Trigger, hold_signals_until_hooks, state, trigger,
};
pub use coldstart_runtime::{
    Phase, Timeline, after_first_request, draining, first_request_done, first_response, on_shutdown,
};

/// The plan the runtime was built from; `None` outside `#[coldstart::main]`.
///
/// ```
/// // Outside #[coldstart::main] there is no plan.
/// assert!(coldstart::plan().is_none());
/// ```
pub fn plan() -> Option<&'static Plan> {
    coldstart_runtime::plan()
}

/// What the probe found at start-up; `None` outside `#[coldstart::main]`.
pub fn budget() -> Option<&'static Budget> {
    coldstart_runtime::budget()
}

/// What happened to each `#[coldstart::init]` registration so far, in name order;
/// empty outside `#[coldstart::main]` or without registrations.
pub fn inits() -> Vec<InitReport> {
    coldstart_runtime::init::reports()
}

/// The start-up timeline so far: the process's start (its creation, in clock ticks),
/// main, configuration read (and telemetry installed), probe, plan, registrations
/// ordered, runtime built, inits, body entered, first response.
///
/// ```
/// let t = coldstart::timeline();
/// assert!(t.since_main(coldstart::Phase::BodyEntered).is_none());
/// ```
pub fn timeline() -> Timeline {
    coldstart_runtime::timeline()
}

/// Metrics and tracing that start after the first response (features `metrics`,
/// `tracing`). `#[coldstart::main]` installs them; put `HttpTelemetryLayer` in the
/// service stack, inside `FirstResponseLayer`. Record your own metrics with the
/// `metrics` crate (0.24) and your own spans with `opentelemetry` (0.33): they go
/// through the same recorder and tracer provider.
///
/// ```
/// use coldstart::telemetry::HttpTelemetryLayer;
/// let layer = HttpTelemetryLayer::new().route(|path| (path == "/").then_some("/"));
/// # let _ = layer;
/// ```
#[cfg(any(feature = "metrics", feature = "tracing"))]
pub mod telemetry {
    pub use coldstart_exporters::http::{
        ClientAddress, HttpTelemetryLayer, ResponseBody, Route, RouteFn,
    };
    #[cfg(feature = "metrics")]
    pub use coldstart_exporters::metrics::{register_collector, render, serving_on, set_buckets};
    /// Plugins: hooks on span end, metric recorded and problem reported, registered
    /// with [`plugin!`] (link time) or `coldstart::Builder::plugin`, run in priority
    /// order. See [`plugin::Plugin`].
    pub use coldstart_exporters::plugin;
    pub use coldstart_exporters::problem::{Dropped, dropped};
    #[cfg(feature = "tracing")]
    pub use coldstart_exporters::trace::propagation::{
        extract_headers, extract_map, inject_headers, inject_map,
    };
    #[cfg(feature = "grpc")]
    pub use coldstart_exporters::trace::propagation::{extract_metadata, inject_metadata};
    #[cfg(feature = "tracing")]
    pub use coldstart_exporters::trace::sampler::DynamicSampler;
    /// Counts one request for the dynamic sampler, for a server that serves without
    /// `HttpTelemetryLayer` (see `coldstart_exporters::trace::sampler::record`).
    #[cfg(feature = "tracing")]
    pub use coldstart_exporters::trace::sampler::record as record_for_sampler;
    pub use coldstart_exporters::{Config, ConfigError, Telemetry, installed};
}

/// AWS Lambda (feature `lambda`): [`lambda::run`] mirrors `lambda_runtime::run`, and
/// the usual types are here so a function needs no direct `lambda_runtime`
/// dependency. See the README's "AWS Lambda" section.
///
/// ```no_run
/// use coldstart::lambda::{Error, LambdaEvent, service_fn};
///
/// // Any serde types: a JSON string in, the same string out.
/// async fn echo(event: LambdaEvent<String>) -> Result<String, Error> {
///     Ok(event.payload)
/// }
///
/// #[coldstart::main]
/// async fn main() -> Result<(), Error> {
///     coldstart::lambda::run(service_fn(echo)).await
/// }
/// ```
#[cfg(feature = "lambda")]
pub mod lambda {
    pub use coldstart_lambda::{
        Context, Diagnostic, EnvError, Error, Function, IntoFunctionResponse, Invocation,
        InvocationLayer, LambdaEvent, LambdaInvocation, MetadataPrelude, Runtime, RuntimeApi,
        StreamResponse, TracingLayer, instrument, registered, run, service_fn,
    };
}

/// What the attributes expand to. Not a public API: it changes without notice between
/// versions, which is why it is versioned (`v1`).
#[doc(hidden)]
pub mod __private {
    /// Version 1 of the expansion.
    pub mod v1 {
        pub use coldstart_bootstrap::init::{
            Declared, INITS, InitOutput, Lazy, Registration, Work, linkme,
        };
        pub use coldstart_bootstrap::{Flavor, Settings, Strategy};
        use core::future::Future;

        /// `#[coldstart::main]`; `describe` gives the text of an error the body returns
        /// (see [`Describe`]), for the init error on Lambda.
        pub fn block_on<F: Future>(
            settings: &Settings,
            start_paused: bool,
            body: F,
            describe: fn(&F::Output) -> Option<String>,
        ) -> F::Output {
            if start_paused {
                return coldstart_runtime::block_on_test(
                    Some(Flavor::CurrentThread),
                    None,
                    true,
                    settings.name,
                    body,
                );
            }
            crate::builder::run(
                settings,
                coldstart_bootstrap::Env::process(),
                body,
                describe,
            )
        }

        /// What `main` returned, to be described: `(&&Describe(&output)).__coldstart_describe()`,
        /// written where the output's type is known, is what Rust's own `main` prints
        /// for an `Err` (`Error: ` and its `Debug`) and `None` for anything else. The
        /// method is [`DescribeError`]'s for a `Result`, found first through the extra
        /// reference, and [`DescribeOther`]'s otherwise.
        pub struct Describe<'a, T>(pub &'a T);

        /// [`Describe`] of a `Result`.
        pub trait DescribeError {
            /// `Error: {:?}` of the error, if it is one.
            fn __coldstart_describe(&self) -> Option<String>;
        }

        impl<T, E: core::fmt::Debug> DescribeError for &Describe<'_, Result<T, E>> {
            fn __coldstart_describe(&self) -> Option<String> {
                self.0.as_ref().err().map(|e| format!("Error: {e:?}"))
            }
        }

        /// [`Describe`] of anything but a `Result`.
        pub trait DescribeOther {
            /// Always `None`.
            fn __coldstart_describe(&self) -> Option<String>;
        }

        impl<T> DescribeOther for Describe<'_, T> {
            fn __coldstart_describe(&self) -> Option<String> {
                None
            }
        }

        /// `#[coldstart::test]`.
        pub use coldstart_runtime::block_on_test;

        /// Evaluated where an attribute says `start_paused = true`: without the
        /// `test-util` feature it fails to compile, as `#[tokio::test(start_paused =
        /// true)]` does without tokio's, instead of panicking when the test runs.
        pub const fn start_paused_is_available() {
            #[cfg(not(feature = "test-util"))]
            panic!(
                "start_paused needs the `test-util` feature of coldstart, as tokio's needs tokio's"
            );
        }

        /// The future of an `async fn` `#[coldstart::init]` registers, as it is:
        /// called at the function's name, so that a future that is not `Send` (it
        /// may run on any worker) is said there, not at the attribute.
        pub fn init_future_must_be_send<F: ::core::future::Future + Send>(future: F) -> F {
            future
        }
    }
}

#[cfg(test)]
mod tests {
    use super::__private::v1::{Describe, DescribeError as _, DescribeOther as _};

    /// The expansion's description of what `main` returned: an `Err` as Rust's own
    /// `main` prints it, anything else nothing.
    #[test]
    #[allow(clippy::needless_borrow)] // written as the expansion writes it, for any type
    fn an_error_main_returns_is_described_as_rust_prints_it() {
        let failed: Result<(), String> = Err("no `TABLE` set".to_owned());
        assert_eq!(
            (&&Describe(&failed)).__coldstart_describe().as_deref(),
            Some("Error: \"no `TABLE` set\"")
        );
        let ok: Result<u8, String> = Ok(1);
        assert_eq!((&&Describe(&ok)).__coldstart_describe(), None);
        assert_eq!((&&Describe(&())).__coldstart_describe(), None);
        assert_eq!(
            (&&Describe(&std::process::ExitCode::FAILURE)).__coldstart_describe(),
            None
        );
    }
}

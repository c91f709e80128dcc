/*!
AWS Lambda on coldstart: `lambda_runtime` with telemetry that costs (almost) nothing
at cold start and survives the freeze.

[`run`] mirrors `lambda_runtime::run`. Around the handler it adds:

- one server span per invocation (FaaS conventions, `faas.coldstart` on the first
  only, linked to the X-Ray trace), exported over OTLP when an endpoint or
  `OTEL_TRACES_EXPORTER` is set;
- one CloudWatch EMF line per invocation on stdout: `ColdStart`, `InitDuration`
  (measured from process start), `Duration`, `Errors`;
- after each response has been posted and before the next `/next`, a flush of queued
  spans and, with a Pushgateway, a push of the metrics, within
  `COLDSTART_LAMBDA_FLUSH_TIMEOUT`, so the caller never waits for
  telemetry and nothing is lost to the freeze;
- an internal extension, so Lambda sends SIGTERM and the shutdown hooks (the final
  flush) run, when the program has hooks of its own, pushes metrics to a Pushgateway,
  or sets `COLDSTART_LAMBDA_EXTENSION=on`;
- init failures (a failed `#[coldstart::init]`, a bad setting, a `main` that panics
  or returns before `run`) reported to `/runtime/init/error`, where `lambda_runtime`
  reports only failures of its SnapStart hooks;
- clear errors, not panics, for missing Lambda variables.

Users reach it as `coldstart::lambda` (feature `lambda`).

```no_run
use coldstart_lambda::{Error, LambdaEvent, service_fn};

async fn echo(event: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    Ok(event.payload)
}

# async fn main_body() -> Result<(), Error> {
coldstart_lambda::run(service_fn(echo)).await
# }
```
*/
#![warn(missing_docs, unreachable_pub)]

mod emf;
mod extension;
mod function;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
mod handler;
#[cfg(feature = "tracing")]
mod http_event;
mod init_error;
mod layer;
#[cfg(feature = "tracing")]
mod lenient;
mod ready;
mod settings;
#[cfg(feature = "tracing")]
mod span;
#[cfg(feature = "tracing")]
mod status;
mod watch;
pub mod xray;

use std::fmt::Debug;
use std::future::Future;

use coldstart_bootstrap::Env;
use coldstart_exporters::Config;
use coldstart_exporters::config::Extension;
use serde::{Deserialize, Serialize};

pub use emf::DEFAULT_NAMESPACE;
pub use extension::NAME as EXTENSION_NAME;
pub use function::{EnvError, Function, REQUIRED, RuntimeApi, account_id, detected};
pub use handler::{Instrumented, InstrumentedFuture, Watched, WatchedStream, instrument};
pub use init_error::{report_init_error, serving};
pub use lambda_runtime::layers::TracingLayer;
pub use lambda_runtime::{
    Context, Diagnostic, Error, IntoFunctionResponse, LambdaEvent, LambdaInvocation,
    MetadataPrelude, Runtime, StreamResponse, service_fn,
};
pub use layer::{Invocation, InvocationFuture, InvocationLayer};
pub use watch::{WatchInit, watch_init};

/// Runs `handler` for every invocation until the process ends: `lambda_runtime::run`
/// (with its `tracing` span carrying the request id) and coldstart's invocation layer
/// and handler wrapper (see the crate docs).
///
/// # Errors
///
/// When a Lambda variable is missing or invalid ([`EnvError`], also reported to the
/// Runtime API when it can be reached), or when the Runtime API fails, as
/// `lambda_runtime::run`. A handler's error or panic is not an error here: it is
/// reported for that invocation and the next one is served.
pub async fn run<A, F, R, B, S, D, E>(handler: F) -> Result<(), Error>
where
    F: tower_service::Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + Debug + 'static,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S>,
    B: Serialize,
    S: futures_core::Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<Error> + Send + Debug,
{
    let function = match function::current() {
        Ok(function) => function.clone(),
        // Said by whoever gets the error: `main` returning it prints it, in one line.
        Err(e) => {
            init_error::report_if_initialising("Runtime.ConfigError", &e.to_string());
            return Err(e.clone().into());
        }
    };
    register(&function).await;
    // lambda_runtime's own `TracingLayer`, as `lambda_runtime::run` has it: a `tracing`
    // span with the request id around each invocation, which a program's own
    // subscriber puts on its log lines. Inside coldstart's layer, so that the
    // invocation's OpenTelemetry span is current when it opens.
    Runtime::new(instrument(handler))
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(InvocationLayer::new(function))
        .run()
        .await
}

/// How long the final flush may take: Lambda allows 500 ms after SIGTERM when only
/// internal extensions are registered.
pub const SHUTDOWN_BUDGET: std::time::Duration = std::time::Duration::from_millis(400);

/// How long the shutdown hooks may take where coldstart registers no extension of its
/// own: a SIGTERM then comes only because an external extension is registered (an
/// ADOT or Datadog layer), and Lambda allows the runtime 300 ms after it.
pub const EXTERNAL_SHUTDOWN_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);

/// What a SIGTERM finds: Lambda stops the process 500 ms after it (300 ms where only
/// external extensions are registered), so the program's own hooks too give up
/// before, each said, rather than be cut off unsaid (`cap`). It comes to an idle
/// environment: no drain, which would wait on `/next`.
fn at_sigterm(cap: std::time::Duration) {
    coldstart_runtime::lifecycle::cap_hook_deadlines(cap);
    coldstart_runtime::lifecycle::skip_drain();
}

/// Whether coldstart's extension is wanted now, by the setting and what waits for the
/// shutdown.
pub(crate) fn extension_wanted() -> bool {
    registers(settings::current().extension, work_at_shutdown())
}

/// Whether anything waits for the shutdown: a hook registered, or a Pushgateway set.
fn work_at_shutdown() -> bool {
    coldstart_runtime::lifecycle::shutdown_hooks() > 0
        || coldstart_exporters::installed().is_some_and(|c| c.push.is_some())
}

/// Whether coldstart registers its extension (`COLDSTART_LAMBDA_EXTENSION`; with
/// `auto`, where something waits for the shutdown: `work` is a hook registered or a
/// Pushgateway set).
fn registers(extension: Extension, work: bool) -> bool {
    match extension {
        Extension::On => true,
        Extension::Off => false,
        Extension::Auto => work,
    }
}

/// The cap on the shutdown hooks, all together: [`SHUTDOWN_BUDGET`] with coldstart's
/// extension registered, else [`EXTERNAL_SHUTDOWN_BUDGET`].
pub(crate) fn hook_cap(extension: bool) -> std::time::Duration {
    if extension {
        SHUTDOWN_BUDGET
    } else {
        EXTERNAL_SHUTDOWN_BUDGET
    }
}

/// Set by the first [`run`] (or [`registered`]) that wants the extension: a second
/// `run` in the process (after the first returned an error) neither registers it
/// again, which Lambda refuses once the function is ready while the first registration
/// still holds, nor adds a second final flush.
static EXTENSION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Registers the final flush as a shutdown hook (it runs on SIGTERM, or when `main`
/// ends), which also makes SIGTERM end the process cleanly once the hooks are done.
fn on_shutdown_flush() {
    let telemetry = coldstart_exporters::telemetry();
    coldstart_runtime::on_shutdown("lambda final flush", SHUTDOWN_BUDGET, move || async move {
        let left = match telemetry {
            // A margin is kept, as by the exporters' own final flush: to say what was
            // left before the hooks are cut at the budget.
            Some(t) => {
                t.flush(coldstart_exporters::final_flush_budget(SHUTDOWN_BUDGET))
                    .await
            }
            None => 0,
        };
        coldstart_bootstrap::say!("coldstart: lambda: final flush done, {left} spans left");
    });
}

/// Starts what can overlap the program's own init: the extension's registration,
/// where it is already known to be wanted (`COLDSTART_LAMBDA_EXTENSION=on`, or `auto`
/// with a Pushgateway set or a shutdown hook registered). `#[coldstart::main]` calls
/// it before the body on Lambda; [`run`] waits for it, or the invocation layer
/// follows it where the program runs its own `Runtime`. Does nothing off Lambda.
///
/// # Panics
///
/// Outside a tokio runtime.
pub fn prepare() {
    if !detected() || !extension_wanted() {
        return;
    }
    if let Ok(function) = function::current() {
        extension::start(&function.runtime_api);
    }
}

/// What [`run`] does before its first `/next`, for a program that runs its own
/// `Runtime` with [`InvocationLayer`] (it awaits this before `run()`): registers
/// coldstart's extension where something now waits for the shutdown (a hook the
/// program registered, a Pushgateway, or `COLDSTART_LAMBDA_EXTENSION=on`; one
/// `#[coldstart::main]` started before the body is not started again) with the final
/// flush as a shutdown hook, caps the hooks to what Lambda gives after SIGTERM, and
/// waits for the registration: Lambda refuses one once the function has asked for
/// its first invocation. A registration still unanswered after a second goes on while
/// the function serves; a failure is said, and the hooks then have what Lambda gives
/// without it. Does nothing where the Lambda variables are missing
/// ([`InvocationLayer::from_env`] says so).
pub async fn registered() {
    if let Ok(function) = function::current() {
        register(function).await;
    }
}

/// The extension's registration and the shutdown's cap, as [`run`] and
/// [`registered`] make them.
async fn register(function: &Function) {
    let wanted = extension_wanted();
    at_sigterm(hook_cap(wanted));
    if wanted && !EXTENSION.swap(true, std::sync::atomic::Ordering::AcqRel) {
        extension::start(&function.runtime_api);
        on_shutdown_flush();
    }
    extension::registered().await;
}

/// Adjusts telemetry settings for Lambda before they are installed, where the
/// environment did not decide otherwise: no `/metrics` listener (nothing can scrape
/// a frozen function), spans exported only when an OTLP endpoint is set, the
/// service named after the function, pushes grouped by execution environment (an
/// `instance` label, the log stream's name, unless the grouping has one), and the
/// function's FaaS and cloud resource attributes (under `OTEL_RESOURCE_ATTRIBUTES`,
/// which win). Does nothing off Lambda.
pub fn configure(config: &mut Config, env: &Env) {
    if !detected() {
        return;
    }
    if let Ok(function) = function::current() {
        configure_for(config, env, function);
    }
}

/// [`configure`] for `function`.
fn configure_for(config: &mut Config, env: &Env, function: &Function) {
    if env.lookup("COLDSTART_METRICS_ADDR").is_none() {
        config.metrics_addr = None;
    }
    // Lambda stops the process 500 ms after SIGTERM: the span flush and the final
    // push give up before, and the process exits by itself.
    config.final_flush_within = config.final_flush_within.min(SHUTDOWN_BUDGET);
    if let Some(push) = config.push.as_mut() {
        push.final_within = push.final_within.min(SHUTDOWN_BUDGET);
        // Each execution environment pushes its own counts: in one group, every push
        // replaced the others' and the counters went up and down. The function's
        // variables are the same in every environment, so no setting can tell them
        // apart; the log stream's name does.
        if let Some(instance) = &function.instance
            && !push.grouping.iter().any(|(label, _)| label == "instance")
        {
            push.grouping
                .push(("instance".to_owned(), instance.clone()));
        }
    }
    if config.otlp_endpoint.is_none() && env.lookup("OTEL_TRACES_EXPORTER").is_none() {
        config.export_traces = false;
    }
    let named = env.is_set("OTEL_SERVICE_NAME") || config.service_name_attribute().is_some();
    if !named {
        config.service_name = function.name.clone();
    }
    let mut attributes = function.resource_attributes();
    attributes.append(&mut config.resource_attributes);
    config.resource_attributes = attributes;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn configured(vars: &[(&str, &str)]) -> Config {
        let function = Function::from_lookup(|key| {
            let value = match key {
                "AWS_LAMBDA_RUNTIME_API" => "127.0.0.1:9001",
                "AWS_LAMBDA_FUNCTION_NAME" => "hello",
                "AWS_LAMBDA_FUNCTION_VERSION" => "7",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => "512",
                "AWS_REGION" => "eu-west-1",
                "AWS_LAMBDA_LOG_STREAM_NAME" => "2026/12/06/[7]abc",
                _ => return None,
            };
            Some(value.to_owned())
        })
        .unwrap();
        let env = Env::fixed(vars.iter().copied());
        let (mut config, errors) = Config::from(&env);
        assert!(errors.is_empty(), "{errors:?}");
        configure_for(&mut config, &env, &function);
        config
    }

    /// Without an endpoint nothing is exported, but tracing stays on: spans are made and
    /// propagated, as `OTEL_TRACES_EXPORTER=none` would have them. Nothing listens
    /// for scrapes, and the service is named after the function.
    #[test]
    fn without_an_endpoint_spans_are_made_but_not_exported() {
        let config = configured(&[]);
        assert!(config.traces && !config.export_traces);
        assert!(config.trace_context);
        assert_eq!(config.metrics_addr, None);
        assert_eq!(config.service_name, "hello");
        // A blank name is no name (it kept `unknown_service:...`).
        assert_eq!(
            configured(&[("OTEL_SERVICE_NAME", " ")]).service_name,
            "hello"
        );

        let config = configured(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]);
        assert!(config.traces && config.export_traces);
        let config = configured(&[("OTEL_TRACES_EXPORTER", "otlp")]);
        assert!(config.export_traces, "the environment decided");
        let config = configured(&[("OTEL_SDK_DISABLED", "true")]);
        assert!(!config.traces && !config.export_traces);
    }

    /// Lambda stops the process 500 ms after SIGTERM: the span flush and the final push
    /// may not take the 5 s and 10 s they have elsewhere.
    #[test]
    fn the_final_flush_and_push_fit_in_what_lambda_allows_after_sigterm() {
        let config = configured(&[("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091")]);
        assert_eq!(config.final_flush_within, SHUTDOWN_BUDGET);
        assert_eq!(config.push.unwrap().final_within, SHUTDOWN_BUDGET);
        let (elsewhere, _) = Config::from(&Env::fixed([(
            "COLDSTART_METRICS_PUSH_URL",
            "http://127.0.0.1:9091",
        )]));
        assert_eq!(
            elsewhere.final_flush_within,
            coldstart_exporters::config::FINAL_FLUSH_WITHIN
        );
        assert_eq!(
            elsewhere.push.unwrap().final_within,
            coldstart_exporters::config::FINAL_PUSH_WITHIN
        );
    }

    /// Where coldstart registers no extension, a SIGTERM comes only through an
    /// external one, and Lambda then allows the runtime 300 ms, not 500: the hooks
    /// are cut within it (at 400 ms, the process's end cut them unsaid).
    #[test]
    fn the_hooks_fit_in_what_lambda_allows_with_only_external_extensions() {
        let ms = std::time::Duration::from_millis;
        for (extension, work, expected) in [
            (Extension::On, false, true),
            (Extension::On, true, true),
            (Extension::Auto, true, true),
            (Extension::Auto, false, false),
            (Extension::Off, true, false),
        ] {
            assert_eq!(
                registers(extension, work),
                expected,
                "{extension:?}, work {work}"
            );
            let cap = hook_cap(expected);
            // With coldstart's extension Lambda allows 500 ms, with only external
            // ones 300.
            let allowed = if expected { ms(500) } else { ms(300) };
            assert!(cap < allowed, "{extension:?}, work {work}: {cap:?}");
        }
        assert_eq!(hook_cap(registers(Extension::On, false)), SHUTDOWN_BUDGET);
        assert_eq!(
            hook_cap(registers(Extension::Off, false)),
            EXTERNAL_SHUTDOWN_BUDGET
        );
    }

    /// Every execution environment pushes to a group of its own, named by its log
    /// stream, unless the grouping names an `instance` already.
    #[test]
    fn pushes_are_grouped_by_execution_environment() {
        let url = ("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091");
        let config = configured(&[url]);
        assert_eq!(
            config.push.unwrap().grouping,
            [("instance".to_owned(), "2026/12/06/[7]abc".to_owned())]
        );
        let config = configured(&[url, ("COLDSTART_METRICS_PUSH_GROUPING", "stage=prod")]);
        assert_eq!(
            config.push.unwrap().grouping,
            [
                ("stage".to_owned(), "prod".to_owned()),
                ("instance".to_owned(), "2026/12/06/[7]abc".to_owned())
            ]
        );
        let config = configured(&[url, ("COLDSTART_METRICS_PUSH_GROUPING", "instance=one")]);
        assert_eq!(
            config.push.unwrap().grouping,
            [("instance".to_owned(), "one".to_owned())]
        );
    }
}

//! `coldstart::Builder`: what `#[coldstart::main]` does, from code, with settings in
//! the code layer (above the configuration file, below environment variables).

use std::future::Future;

use coldstart_bootstrap::config::VARIABLES;
use coldstart_bootstrap::{Env, Flavor, Settings, Strategy};

/// Runs an async body on a runtime planned for the process's budget, with settings
/// given in code: the same as `#[coldstart::main]`, for programs that build their
/// own `main`.
///
/// Settings are layered: defaults, then the configuration file (`coldstart.toml` or
/// `config/<env>.toml`), then what is set here, then environment variables. Any
/// variable of the README's Settings and Telemetry tables can be set by name with
/// [`Builder::set`].
///
/// ```no_run
/// // In `fn main()`, with the `metrics` and `tracing` features:
/// coldstart::Builder::new()
///     .strategy(coldstart::Strategy::Minimal)
///     .set("OTEL_SERVICE_NAME", "checkout")
///     .set("COLDSTART_METRICS_ADDR", "0.0.0.0:9464")
///     .service_version(env!("CARGO_PKG_VERSION"))
///     .block_on(async {
///         println!("serving");
///     });
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    settings: Settings,
    env: Env,
    unknown: Vec<String>,
    /// Settings of a feature this build lacks, and the feature.
    unbuilt: Vec<(&'static str, &'static str)>,
    refused: Vec<String>,
}

impl Builder {
    /// No settings in code: the plan, the file and the environment decide.
    pub fn new() -> Self {
        Builder::default()
    }

    /// The strategy: `.set("COLDSTART_STRATEGY", ...)` (the variable still overrides
    /// it; the plan's reasons say "COLDSTART_STRATEGY set in code").
    pub fn strategy(self, strategy: Strategy) -> Self {
        self.set("COLDSTART_STRATEGY", strategy.as_str())
    }

    /// The scheduler flavor: `.set("COLDSTART_FLAVOR", ...)`.
    pub fn flavor(self, flavor: Flavor) -> Self {
        self.set("COLDSTART_FLAVOR", flavor.as_str())
    }

    /// The worker-thread count, 1 to 1024: `.set("COLDSTART_WORKER_THREADS", ...)`,
    /// and another value ends the program before the body with one line and exit code
    /// 78, as a bad `COLDSTART_WORKER_THREADS` does.
    pub fn worker_threads(self, n: usize) -> Self {
        self.set("COLDSTART_WORKER_THREADS", n.to_string())
    }

    /// The init profile, as text, in place of the `profile` argument of
    /// `#[coldstart::main]`: `.init_profile(include_str!("../coldstart.profile"))`.
    /// `COLDSTART_PROFILE` still overrides it. A profile that does not parse is said in
    /// one line at start-up and the default order is used. (`cargo coldstart build`
    /// embeds its profile into `#[coldstart::main]` only: a `Builder` program passes
    /// its own here.)
    pub fn init_profile(mut self, profile: &'static str) -> Self {
        self.settings.init_profile = Some(profile);
        self
    }

    /// The tokio runtime's name (`Handle::current().name()`), as tokio's
    /// `Builder::name` and the attributes' `name` argument give it. A blank one ends the
    /// program before the body with one line and exit code 78.
    pub fn name(mut self, name: &'static str) -> Self {
        self.settings.name = Some(name);
        self
    }

    /// The `service.version` resource attribute.
    pub fn service_version(mut self, version: &'static str) -> Self {
        self.settings.service_version = Some(version);
        self
    }

    /// Sets a setting by its variable name, such as `OTEL_SERVICE_NAME` or
    /// `COLDSTART_METRICS_ADDR`; the value is checked as the variable's would be. A
    /// name coldstart does not read, or a setting of a feature this build lacks (a
    /// `COLDSTART_METRICS_*` one without `metrics`, say: nothing would read it), ends
    /// the program at [`Builder::block_on`] with a message naming it.
    pub fn set(mut self, variable: &str, value: impl Into<String>) -> Self {
        match VARIABLES.iter().find(|v| **v == variable) {
            Some(v) => match unbuilt_feature(v) {
                Some(feature) => self.unbuilt.push((v, feature)),
                None => self.env = self.env.with_code(v, value.into()),
            },
            None => self.unknown.push(variable.to_owned()),
        }
        self
    }

    /// Adds a telemetry plugin with a priority (lower runs first; see
    /// `coldstart::telemetry::plugin`).
    #[cfg(any(feature = "metrics", feature = "tracing"))]
    pub fn plugin(
        mut self,
        priority: i32,
        plugin: impl coldstart_exporters::plugin::Plugin + 'static,
    ) -> Self {
        if let Err(e) = coldstart_exporters::plugin::add(priority, Box::new(plugin)) {
            self.refused.push(e.to_string());
        }
        self
    }

    /// Probes, plans, builds the runtime and runs `body` on it to completion.
    ///
    /// # Exits
    ///
    /// As `#[coldstart::main]`: a bad runtime setting (from any layer), or a name
    /// [`Builder::set`] does not know or cannot use in this build, ends the program
    /// with a one-line message and exit code 78; a bad telemetry value is said in one
    /// line and its default used, as for its variable. A runtime that cannot be built
    /// ends it with 71, and a second start in one process with 70: the plan, signals
    /// and telemetry are the process's, and run once. After SIGTERM or SIGINT (once
    /// the shutdown hooks have run: exit 0, unless the body returned by itself within
    /// the drain deadline, whose output is returned), or a `fatal` deferred init that
    /// failed (exit 70), it ends the program rather than return: code after
    /// `block_on` does not run then, so teardown of the program's own belongs in a
    /// shutdown hook.
    ///
    /// One difference from the attribute, on Lambda: a body that returns an `Err`
    /// before `coldstart::lambda::run` serves reports its init failure without the
    /// error's text (the attribute knows `main`'s return type and describes it).
    pub fn block_on<F: Future>(self, body: F) -> F::Output {
        if let Some(name) = self.unknown.first() {
            exit_config(
                &if coldstart_bootstrap::config::ENVIRONMENT_ONLY.contains(&name.as_str()) {
                    format!(
                        "`{name}` is read from the environment only, not set in code (the README's Settings section; a profile in code is Builder::init_profile)"
                    )
                } else {
                    format!(
                        "`{name}` is not a setting coldstart reads (Builder::set takes a variable name from the README's Settings and Telemetry tables, such as OTEL_SERVICE_NAME)"
                    )
                },
            );
        }
        if let Some((name, feature)) = self.unbuilt.first() {
            exit_config(&format!(
                "`{name}` is read only in a build with coldstart's {feature}, which this one lacks (add it to coldstart's features in Cargo.toml, or drop the setting)"
            ));
        }
        if let Some(refused) = self.refused.first() {
            exit_config(&refused.to_string());
        }
        run(&self.settings, self.env, body, |_| None)
    }
}

/// The coldstart feature (or features) that reads `variable`, in words, when this
/// build lacks it.
fn unbuilt_feature(variable: &str) -> Option<&'static str> {
    let any_telemetry = cfg!(any(
        feature = "metrics",
        feature = "tracing",
        feature = "lambda"
    ));
    let (feature, built) = match variable {
        v if v.starts_with("COLDSTART_METRICS_TLS_") => (
            "`metrics` and `tls` features",
            cfg!(all(feature = "metrics", feature = "tls")),
        ),
        v if v.starts_with("COLDSTART_METRICS_") => {
            ("`metrics` feature", cfg!(feature = "metrics"))
        }
        v if v.starts_with("COLDSTART_LAMBDA_") || v == "COLDSTART_EMF_NAMESPACE" => {
            ("`lambda` feature", cfg!(feature = "lambda"))
        }
        "COLDSTART_LOG_FORMAT" | "COLDSTART_LOG_FILTER" => {
            ("`logs` feature", cfg!(feature = "logs"))
        }
        v if v.contains("_CERTIFICATE") || v.ends_with("_CLIENT_KEY") => (
            "`tracing` and `tls` features",
            cfg!(all(feature = "tracing", feature = "tls")),
        ),
        // The HTTP layer's method labels and span names.
        "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS" => (
            "`metrics` or `tracing` feature",
            cfg!(any(feature = "metrics", feature = "tracing")),
        ),
        // The service's name and resource, and the switch: every telemetry feature.
        "OTEL_SERVICE_NAME" | "OTEL_RESOURCE_ATTRIBUTES" | "OTEL_SDK_DISABLED" => {
            ("`metrics`, `tracing` or `lambda` feature", any_telemetry)
        }
        v if v.starts_with("OTEL_") || v.starts_with("COLDSTART_SAMPLER_") => {
            ("`tracing` feature", cfg!(feature = "tracing"))
        }
        _ => return None,
    };
    (!built).then_some(feature)
}

/// Ends the program for a configuration error: one line, reported (to the Lambda
/// Runtime API on Lambda), exit code 78.
fn exit_config(message: &str) -> ! {
    coldstart_bootstrap::say!("coldstart: {message}");
    coldstart_bootstrap::failure::report(coldstart_bootstrap::failure::Cause::Config, message);
    std::process::exit(coldstart_runtime::EXIT_CONFIG);
}

/// Adds the configuration file, installs telemetry (when built in) and runs `body`;
/// `describe` gives the text of an error it returns (for Lambda's init error).
pub(crate) fn run<F: Future>(
    settings: &Settings,
    env: Env,
    body: F,
    describe: fn(&F::Output) -> Option<String>,
) -> F::Output {
    let env = coldstart_runtime::load_env(env);
    // As `Builder::set` refuses them: a file's setting nothing in this build reads.
    if let Some(file) = env.file() {
        for entry in &file.entries {
            if let Some(feature) = unbuilt_feature(entry.variable) {
                exit_config(&format!(
                    "{} line {}: `{}` is read only in a build with coldstart's {feature}, which this one lacks (add it to coldstart's features in Cargo.toml, or drop the setting)",
                    file.path,
                    entry.line,
                    coldstart_bootstrap::config::file_key(entry.variable)
                ));
            }
        }
    }
    if coldstart_runtime::plan().is_some() {
        // Started before in this process: `block_on_in` ends it with one line and exit
        // code 70, before telemetry is installed a second time and says more (its bad
        // values again, a second `tracing` subscriber refused).
        return coldstart_runtime::block_on_in(settings, &env, body);
    }
    #[cfg(feature = "lambda")]
    let body = async move {
        coldstart_lambda::prepare();
        coldstart_lambda::watch_init(body, describe).await
    };
    #[cfg(not(feature = "lambda"))]
    let _ = describe;
    #[cfg(any(feature = "metrics", feature = "tracing", feature = "lambda"))]
    {
        // On Lambda the integration changes some defaults before they are installed.
        #[cfg(feature = "lambda")]
        let telemetry =
            coldstart_exporters::install_adjusted(&env, settings.service_version, |c| {
                coldstart_lambda::configure(c, &env)
            });
        #[cfg(not(feature = "lambda"))]
        let telemetry = coldstart_exporters::install(&env, settings.service_version);
        // A job that ends before any first response still flushes and pushes.
        coldstart_runtime::lifecycle::at_end_of_main(|| {
            if let Some(telemetry) = coldstart_exporters::telemetry() {
                telemetry.end_of_main();
            }
        });
        coldstart_runtime::block_on_in(settings, &env, async move {
            telemetry.start_after_first_response();
            body.await
        })
    }
    #[cfg(not(any(feature = "metrics", feature = "tracing", feature = "lambda")))]
    coldstart_runtime::block_on_in(settings, &env, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each setting needs what reads it; the runtime's own need nothing. Run in every
    /// configuration of the feature matrix.
    #[test]
    fn a_setting_no_feature_of_this_build_reads_is_named() {
        let metrics = cfg!(feature = "metrics");
        let tracing = cfg!(feature = "tracing");
        let tls = cfg!(feature = "tls");
        for (variable, built) in [
            ("COLDSTART_STRATEGY", true),
            ("COLDSTART_DRAIN_TIMEOUT", true),
            ("COLDSTART_METRICS_ADDR", metrics),
            ("COLDSTART_METRICS_PUSH_URL", metrics),
            ("COLDSTART_METRICS_TLS_CERT", metrics && tls),
            ("COLDSTART_LAMBDA_FLUSH_TIMEOUT", cfg!(feature = "lambda")),
            ("COLDSTART_EMF_NAMESPACE", cfg!(feature = "lambda")),
            ("COLDSTART_LOG_FORMAT", cfg!(feature = "logs")),
            ("COLDSTART_SAMPLER_K1", tracing),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", tracing),
            ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", tracing && tls),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", tracing && tls),
            (
                "OTEL_SERVICE_NAME",
                metrics || tracing || cfg!(feature = "lambda"),
            ),
        ] {
            assert_eq!(unbuilt_feature(variable).is_none(), built, "{variable}");
        }
    }
}

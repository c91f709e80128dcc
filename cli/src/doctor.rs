//! `cargo coldstart doctor`: what the probe finds and what the plan decides here, with
//! the source of every figure and the reason for every decision.
//!
//! It plans with the same code a service runs at start-up, from the configuration
//! file and the variables of the calling shell; it cannot see settings compiled into a
//! particular binary (set `COLDSTART_LOG=debug` on that binary for its own plan).
//! Telemetry settings are checked as a build with every feature would check them;
//! a value only a build with a feature takes is listed apart, naming the feature.

use std::fmt::Write as _;

use coldstart_bootstrap::config::{VARIABLES, file_key};
use coldstart_bootstrap::plan::settings::OneLine;
use coldstart_bootstrap::plan::{Decision, Origin, Report};
use coldstart_bootstrap::{Budget, Env, Figure, Layer, Plan, PlanError, Probe, Settings, Source};
use coldstart_exporters::config::{Build, Config, PEM_LIMIT};
use serde_json::{Value, json};

/// What doctor was asked for.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Print one JSON object instead of the readable report.
    pub json: bool,
    /// Probe a directory tree shaped like `/` (for fixtures) instead of the real one.
    pub root: Option<std::path::PathBuf>,
}

/// Probes and plans, and renders the result.
///
/// # Errors
///
/// A `COLDSTART_*` variable with a bad value; the message names it.
pub fn render(options: &Options) -> Result<String, coldstart_bootstrap::PlanError> {
    let mut probe = Probe::new();
    if let Some(root) = &options.root {
        probe = probe.root(root);
    }
    let budget = probe.run();
    let env = Env::process()
        .with_file_from_env()
        .map_err(PlanError::File)?;
    let plan = Plan::from_budget(&budget, &Settings::NONE, &env)?;
    // Checked as the service checks it at start-up, where a bad value ends it.
    coldstart_bootstrap::plan::settings::debug_log(&env)?;
    let settings = settings(&env);
    Ok(if options.json {
        let mut document = to_json(&budget, &plan);
        document["settings"] = settings_json(&env, &settings);
        let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
        text.push('\n');
        text
    } else {
        let mut text = Report {
            budget: &budget,
            plan: &plan,
            mimalloc: None,
        }
        .to_string();
        settings_text(&env, &settings, &mut text);
        text
    })
}

/// One setting: its effective value and where it came from.
struct Row {
    variable: &'static str,
    value: String,
    layer: Option<Layer>,
    /// The variable the value came through, when it is not this row's own: the
    /// OTLP settings have a general and a traces-only name, and show the same value.
    via: Option<&'static str>,
    rejected: bool,
    /// Refused in part, the rest used (see `ConfigError::adjusted`).
    adjusted: bool,
}

/// The telemetry settings as `doctor` shows them.
struct Checked {
    rows: Vec<Row>,
    /// Values refused, as the service would say them.
    problems: Vec<String>,
    /// Values refused only by a build without one of coldstart's features, as such a
    /// build would say them (naming the feature): `doctor` cannot see the service's.
    needs_features: Vec<String>,
}

/// The telemetry settings (the plan's own are in the plan), and the problems found.
fn settings(env: &Env) -> Checked {
    let (config, errors) = Config::read(env, Build::ALL);
    // Compared by key: a key both builds refuse is listed as a problem only (a client
    // certificate without its key); its feature is said once that is mended.
    let (_, without) = Config::read(env, Build::NONE);
    let needs_features = without
        .iter()
        .filter(|e| !errors.iter().any(|f| f.key == e.key))
        .map(ToString::to_string)
        .collect();
    let named_by_attributes = config.service_name_attribute().is_some();
    // TLS asked for and refused: `/metrics` is not served at all.
    let tls_refused = errors
        .iter()
        .any(|e| e.key.starts_with("COLDSTART_METRICS_TLS_"));
    let rows = config
        .effective()
        .into_iter()
        .map(|(variable, value)| {
            // The own name wins over the second one, as the exporter reads them,
            // unless it is empty or was refused (then the next one is read), or the
            // second one's layer overrides its own (then only the second is read).
            let names = second_names(variable).unwrap_or([variable, variable]);
            let set = |name: &&str| env.is_set(name);
            let refused = |name: &&str| errors.iter().any(|e| e.key == *name && !e.adjusted());
            let read = if env.set_above(names[1], names[0]) {
                &names[1..]
            } else {
                &names[..]
            };
            let from = read
                .iter()
                .find(|name| set(name) && !refused(name))
                .or_else(|| read.iter().find(|name| set(name)))
                .copied()
                .unwrap_or(variable);
            // Refused in part where the value came from: both names of an OTLP
            // setting show the one value read.
            let adjusted = errors.iter().any(|e| e.key == from && e.adjusted());
            // Where the service name comes from: `service.name` in the resource
            // attributes, where given and not under a higher `OTEL_SERVICE_NAME`.
            let service_name_from = || {
                let attributes = named_by_attributes
                    && (!set(&"OTEL_SERVICE_NAME")
                        || env.set_above("OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"));
                if attributes {
                    Some("OTEL_RESOURCE_ATTRIBUTES")
                } else {
                    set(&"OTEL_SERVICE_NAME").then_some("OTEL_SERVICE_NAME")
                }
            };
            let from = match variable {
                "OTEL_SERVICE_NAME" => service_name_from().unwrap_or(from),
                // The push job is named after the service when no job is given.
                "COLDSTART_METRICS_PUSH_JOB" if !set(&variable) => {
                    service_name_from().unwrap_or(from)
                }
                _ => from,
            };
            let layer = env.lookup(from).map(|(_, l)| l);
            // A value refused, not one missing (a TLS key without which the
            // certificate is refused is named in the problems).
            let rejected = refused(&from) && set(&from);
            let value = match (variable, layer) {
                ("OTEL_SERVICE_NAME", None) if !named_by_attributes => {
                    "unknown_service:<executable>".to_owned()
                }
                // Pushing, with no job or service name: the service's executable's
                // name, not doctor's own.
                ("COLDSTART_METRICS_PUSH_JOB", None) if value != "-" => "<executable>".to_owned(),
                ("COLDSTART_METRICS_ADDR", _) if tls_refused => {
                    "off (its TLS settings were refused)".to_owned()
                }
                (tls, _) if tls_refused && tls.starts_with("COLDSTART_METRICS_TLS_") => {
                    match env.lookup(tls) {
                        Some((given, _)) => given.to_string_lossy().into_owned(),
                        None if tls == "COLDSTART_METRICS_TLS_CLIENT_CA" => value,
                        None => "(missing)".to_owned(),
                    }
                }
                _ => value,
            };
            Row {
                variable,
                value,
                layer: layer.filter(|_| !rejected),
                via: (from != variable).then_some(from),
                rejected,
                adjusted,
            }
        })
        .collect();
    let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    problems.extend(unreadable_files(&config, env));
    Checked {
        rows,
        problems,
        needs_features,
    }
}

/// The TLS files the service will read that cannot be read here: it reads them only
/// after its first response (and then does not serve `/metrics`, or fails every
/// export), so `doctor` checks them now. Only those it reads: `/metrics`' where it is
/// served, the OTLP exporter's for an `https://` collector that spans are sent to.
fn unreadable_files(config: &Config, env: &Env) -> Vec<String> {
    let metrics = config
        .metrics_tls
        .as_ref()
        .filter(|_| config.metrics_addr.is_some());
    let otlp = Some(&config.otlp_tls).filter(|_| config.exports_over_tls());
    // The OTLP files by the name that gave them, chosen as the exporter chooses: the
    // traces-only one where set, unless the general one is set in a layer above it.
    let otlp_name = |traces: &'static str| {
        let general = second_names(traces).map_or(traces, |[_, general]| general);
        match env.is_set(traces) && !env.set_above(general, traces) {
            true => traces,
            false => general,
        }
    };
    let files = [
        (
            "COLDSTART_METRICS_TLS_CERT",
            metrics.map(|t| &t.certificate),
        ),
        ("COLDSTART_METRICS_TLS_KEY", metrics.map(|t| &t.key)),
        (
            "COLDSTART_METRICS_TLS_CLIENT_CA",
            metrics.and_then(|t| t.client_ca.as_ref()),
        ),
        (
            otlp_name("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"),
            otlp.and_then(|t| t.ca.as_ref()),
        ),
        (
            otlp_name("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"),
            otlp.and_then(|t| t.certificate.as_ref()),
        ),
        (
            otlp_name("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"),
            otlp.and_then(|t| t.key.as_ref()),
        ),
    ];
    files
        .into_iter()
        .filter_map(|(variable, path)| {
            let path = path?;
            // Read as the service reads it: a regular file, within the PEM limit.
            let problem = coldstart_bootstrap::file::read_named(path, PEM_LIMIT).err()?;
            Some(format!(
                "{variable} names `{}`, which cannot be read here ({problem}); the service reads it after its first response",
                path.display()
            ))
        })
        .collect()
}

/// For a setting with a second name read when its own is unset, both names in the
/// order they win: an OTLP setting's traces-only and general names, a span, event or
/// link attribute limit with `OTEL_ATTRIBUTE_COUNT_LIMIT`, the span's value length
/// limit with `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, and the log filter with `RUST_LOG`.
fn second_names(variable: &'static str) -> Option<[&'static str; 2]> {
    if variable == "COLDSTART_LOG_FILTER" {
        return Some([variable, "RUST_LOG"]);
    }
    if matches!(
        variable,
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"
            | "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"
            | "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"
    ) {
        return Some([variable, "OTEL_ATTRIBUTE_COUNT_LIMIT"]);
    }
    if variable == "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT" {
        return Some([variable, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"]);
    }
    let setting = variable
        .strip_prefix("OTEL_EXPORTER_OTLP_TRACES_")
        .or_else(|| variable.strip_prefix("OTEL_EXPORTER_OTLP_"))?;
    let known = |name: String| VARIABLES.iter().copied().find(|v| *v == name);
    Some([
        known(format!("OTEL_EXPORTER_OTLP_TRACES_{setting}"))?,
        known(format!("OTEL_EXPORTER_OTLP_{setting}"))?,
    ])
}

fn layer_text(row: &Row) -> String {
    let mut layer = match row.layer {
        _ if row.rejected => "default (the value given was rejected)".to_owned(),
        None => "default".to_owned(),
        Some(Layer::Variable) => "environment".to_owned(),
        Some(Layer::Code) => "code".to_owned(),
        Some(Layer::File { path, line }) => format!("{path} line {line}"),
    };
    if row.adjusted {
        layer.push_str(" (adjusted: part of the value given was rejected)");
    }
    match row.via {
        Some(via) => format!("{layer}, through {via}"),
        None => layer,
    }
}

/// The configuration file looked for where none was read, and what chose it: an
/// `APP_ENV` set for other reasons silently passes `coldstart.toml` by.
fn file_sought(env: &Env) -> String {
    let var = |key: &str| env.get(key).map(|v| v.to_string_lossy().into_owned());
    let chosen_by = coldstart_bootstrap::config::file_chosen_by(var)
        .map(|(key, value)| format!("{key}={value}"));
    match (coldstart_bootstrap::config::which_file(var), chosen_by) {
        (Ok(None), _) => "COLDSTART_CONFIG=off".to_owned(),
        (Ok(Some((path, _))), Some(by)) => format!("{path} not found; chosen by {by}"),
        (Ok(Some((path, _))), None) => format!("{path} not found"),
        // A bad environment name ends `doctor` before this.
        (Err(e), _) => e.to_string(),
    }
}

fn settings_text(env: &Env, checked: &Checked, out: &mut String) {
    // Values and paths come from the environment and the file: a line break or a
    // control character in one is written as its escape, so that a value cannot
    // show as rows of its own (`--json` escapes them as JSON does).
    let file = env.file().map_or_else(
        || format!("none ({})", file_sought(env)),
        |f| f.path.clone(),
    );
    let _ = writeln!(
        out,
        "settings (file: {}; defaults < file < code < environment)",
        OneLine(&file)
    );
    for row in &checked.rows {
        let _ = writeln!(
            out,
            "  {:<45} {:<32} {}",
            row.variable,
            OneLine(&row.value).to_string(),
            OneLine(&layer_text(row))
        );
    }
    if !checked.problems.is_empty() {
        let _ = writeln!(out, "problems");
        for p in &checked.problems {
            let _ = writeln!(out, "  {}", OneLine(p));
        }
    }
    if !checked.needs_features.is_empty() {
        let _ = writeln!(
            out,
            "needs features (taken above as a build with every feature takes them; a build without the feature named says this)"
        );
        for p in &checked.needs_features {
            let _ = writeln!(out, "  {}", OneLine(p));
        }
    }
}

fn settings_json(env: &Env, checked: &Checked) -> Value {
    let values: Vec<Value> = checked
        .rows
        .iter()
        .map(|row| {
            let (layer, path, line) = match row.layer {
                None => ("default", None, None),
                Some(Layer::Variable) => ("environment", None, None),
                Some(Layer::Code) => ("code", None, None),
                Some(Layer::File { path, line }) => ("file", Some(path), Some(line)),
            };
            json!({
                "variable": row.variable,
                "file_key": file_key(row.variable),
                "value": row.value,
                "source": { "layer": layer, "path": path, "line": line, "rejected": row.rejected, "adjusted": row.adjusted, "via": row.via },
            })
        })
        .collect();
    json!({
        "file": env.file().map(|f| f.path.as_str()),
        "file_sought": env.file().is_none().then(|| file_sought(env)),
        "variables": VARIABLES,
        "values": values,
        "problems": checked.problems,
        "needs_features": checked.needs_features,
    })
}

fn source(source: &Source) -> Value {
    let (kind, detail) = match source {
        Source::CgroupV1(path) => ("cgroup_v1", Some(path.as_str())),
        Source::CgroupV2(path) => ("cgroup_v2", Some(path.as_str())),
        Source::Affinity => ("sched_getaffinity", None),
        Source::Lambda(var) => ("lambda", Some(*var)),
        Source::Host(what) => ("host", Some(*what)),
        Source::Given => ("given", None),
        Source::Unknown(why) => ("unknown", Some(why.as_str())),
    };
    json!({ "kind": kind, "detail": detail, "text": source.to_string() })
}

fn figure<T: Into<Value> + Copy>(f: &Figure<T>) -> (Value, Value) {
    (f.value.map_or(Value::Null, Into::into), source(&f.source))
}

fn reason<T>(d: &Decision<T>) -> Value {
    let (origin, name) = match d.reason.origin {
        Origin::Plan => ("plan", None),
        Origin::Attribute(arg) => ("attribute", Some(arg)),
        Origin::Env(var) => ("env", Some(var)),
        Origin::Code(var) => ("code", Some(var)),
        Origin::File { variable, .. } => ("file", Some(variable)),
    };
    json!({ "origin": origin, "name": name, "text": d.reason.to_string() })
}

/// The JSON document `doctor --json` prints. Its fields are documented in the README.
pub fn to_json(budget: &Budget, plan: &Plan) -> Value {
    let (cpu, cpu_source) = figure(&budget.cpu_cores);
    let (memory, memory_source) = figure(&budget.memory_bytes);
    let (host_cpus, host_cpus_source) = figure(&budget.host_cpus);
    let (host_memory, host_memory_source) = figure(&budget.host_memory_bytes);
    json!({
        "limits": {
            "cpu_cores": cpu,
            "memory_bytes": memory,
            "cgroup_version": budget.cgroup_version.as_str(),
            "platform": budget.platform.as_str(),
            "host_cpus": host_cpus,
            "host_memory_bytes": host_memory,
            "sources": {
                "cpu_cores": cpu_source,
                "memory_bytes": memory_source,
                "host_cpus": host_cpus_source,
                "host_memory_bytes": host_memory_source,
            },
        },
        "plan": {
            "strategy": plan.strategy.value.as_str(),
            "flavor": plan.flavor.value.as_str(),
            "worker_threads": plan.worker_threads.value,
            "max_blocking_threads": plan.max_blocking_threads.value,
            "thread_stack_size": plan.thread_stack_size.value,
            "allocator": { "purge_delay_ms": plan.allocator.value.purge_delay_ms },
            "prewarm": plan.prewarm.value,
            "exporters": "after_first_response",
            "first_response_fallback_ms": plan.first_response_fallback.value.map(|d| d.as_millis() as u64),
            "drain_timeout_ms": plan.drain_timeout.value.as_millis() as u64,
            "planned_for": { "cpu_cores": plan.cores, "memory_bytes": plan.memory_bytes },
            "reasons": {
                "strategy": reason(&plan.strategy),
                "flavor": reason(&plan.flavor),
                "worker_threads": reason(&plan.worker_threads),
                "max_blocking_threads": reason(&plan.max_blocking_threads),
                "thread_stack_size": reason(&plan.thread_stack_size),
                "allocator": reason(&plan.allocator),
                "prewarm": reason(&plan.prewarm),
                "exporters": reason(&plan.exporters),
                "first_response_fallback_ms": reason(&plan.first_response_fallback),
                "drain_timeout_ms": reason(&plan.drain_timeout),
            },
        },
    })
}

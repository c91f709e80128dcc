//! `cargo coldstart doctor` shows each telemetry setting's effective value and where
//! it came from: the default, the configuration file and its line, or the environment.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::process::Command;

use coldstart_test_support::temp_dir;
use serde_json::{Value, json};

const DOCTOR: &str = env!("CARGO_BIN_EXE_cargo-coldstart");

/// The JSON `doctor --json` printed, once it has exited 0.
fn succeeded(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `doctor --json` run with `vars` alone.
fn doctor_with(vars: &[(&str, &str)]) -> std::process::Output {
    Command::new(DOCTOR)
        .args(["doctor", "--json"])
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

/// `settings.values` of `doctor --json` run with `vars` alone.
fn values_with(vars: &[(&str, &str)]) -> Vec<Value> {
    let v = succeeded(&doctor_with(vars));
    v["settings"]["values"].as_array().unwrap().clone()
}

/// The row of `variable` in `values`.
fn row<'a>(values: &'a [Value], variable: &str) -> &'a Value {
    values.iter().find(|r| r["variable"] == variable).unwrap()
}

/// A value refused only in part keeps its layer, marked adjusted: `tracecontext,b3`
/// is `tracecontext` from the environment (it said "default", whose value is
/// `tracecontext,baggage`), a batch cut to the queue's size too. A value refused
/// whole is still the default's.
#[test]
fn a_value_refused_in_part_keeps_its_layer_and_says_it_was_adjusted() {
    let values = values_with(&[("OTEL_PROPAGATORS", "tracecontext,b3")]);
    let propagators = row(&values, "OTEL_PROPAGATORS");
    assert_eq!(propagators["value"], "tracecontext");
    assert_eq!(propagators["source"]["layer"], "environment");
    assert_eq!(propagators["source"]["adjusted"], true);
    assert_eq!(propagators["source"]["rejected"], false);
    let values = values_with(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
    ]);
    let batch = row(&values, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
    assert_eq!(
        (&batch["value"], &batch["source"]["layer"]),
        (&"100".into(), &"environment".into())
    );
    assert_eq!(batch["source"]["adjusted"], true);
    // Headers but one that frames the body, which is left out.
    let values = values_with(&[(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "authorization=secret,content-length=5",
    )]);
    let headers = row(&values, "OTEL_EXPORTER_OTLP_HEADERS");
    assert_eq!(headers["value"], "authorization=<hidden>");
    assert_eq!(headers["source"]["layer"], "environment");
    assert_eq!(headers["source"]["adjusted"], true);
    // The traces-only row shows the same value, read through the general name, and is
    // adjusted as it is.
    let traces = row(&values, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    assert_eq!(traces["source"]["via"], "OTEL_EXPORTER_OTLP_HEADERS");
    assert_eq!(traces["source"]["adjusted"], true);
    let values = values_with(&[("OTEL_PROPAGATORS", "b3")]);
    let whole = row(&values, "OTEL_PROPAGATORS");
    assert_eq!(
        (&whole["source"]["layer"], &whole["source"]["rejected"]),
        (&"default".into(), &true.into())
    );
    let text = Command::new(DOCTOR)
        .arg("doctor")
        .env_clear()
        .env("OTEL_PROPAGATORS", "tracecontext,b3")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("OTEL_PROPAGATORS"))
        .unwrap();
    assert!(
        line.ends_with("environment (adjusted: part of the value given was rejected)"),
        "{line}"
    );
}

/// `doctor` cannot see the service's features: a value that needs one is taken as a
/// build with every feature takes it, and listed with what a build without that
/// feature says (it was taken with nothing said, and the service refused it).
#[test]
fn a_value_only_a_feature_takes_is_listed_with_the_feature() {
    let vars = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
    ];
    let v = succeeded(&doctor_with(&vars));
    let settings = &v["settings"];
    let problems = settings["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{settings:#}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains("OTEL_TRACES_SAMPLER")
    );
    let needs = settings["needs_features"].as_array().unwrap();
    assert_eq!(needs.len(), 1, "{settings:#}");
    let need = needs[0].as_str().unwrap();
    assert!(
        need.starts_with("set OTEL_EXPORTER_OTLP_PROTOCOL to"),
        "{need}"
    );
    assert!(need.contains("coldstart's `grpc` feature"), "{need}");
    assert_eq!(
        row(
            settings["values"].as_array().unwrap(),
            "OTEL_EXPORTER_OTLP_PROTOCOL"
        )["value"],
        "grpc"
    );
    let text = Command::new(DOCTOR)
        .arg("doctor")
        .env_clear()
        .envs(vars)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let section = text
        .split("\nneeds features (")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        section.contains("\n  set OTEL_EXPORTER_OTLP_PROTOCOL to"),
        "{text}"
    );
    let v = succeeded(&doctor_with(&[]));
    assert_eq!(v["settings"]["needs_features"], json!([]));
}

/// A TLS file the service will read, only after its first response: `doctor` says
/// now that it cannot be read (it said nothing of a missing file). Only the files the
/// service reads: `/metrics`' where it is served, the exporter's for an `https://`
/// collector.
#[test]
fn a_tls_file_that_cannot_be_read_is_a_problem() {
    let readable = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let files = [
        ("COLDSTART_METRICS_TLS_CERT", "/nonexistent/cert.pem"),
        ("COLDSTART_METRICS_TLS_KEY", readable),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/"),
    ];
    let problems = |vars: &[(&str, &str)]| {
        let v = succeeded(&doctor_with(vars));
        let problems = v["settings"]["problems"].as_array().unwrap().clone();
        problems
            .iter()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let https = (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://collector.example:4318",
    );
    let said = problems(&[&files[..], &[https]].concat());
    assert_eq!(said.len(), 2, "{said:#?}");
    assert!(
        said[0].starts_with(
            "COLDSTART_METRICS_TLS_CERT names `/nonexistent/cert.pem`, which cannot be read here (No such file"
        ),
        "{said:#?}"
    );
    assert!(
        said[1].starts_with(
            "OTEL_EXPORTER_OTLP_CERTIFICATE names `/`, which cannot be read here (is a directory, not a regular file)"
        ),
        "{said:#?}"
    );
    // Files the service does not read: `/metrics` off, a plain collector.
    let off = ("COLDSTART_METRICS_ADDR", "off");
    assert_eq!(
        problems(&[&files[..], &[off]].concat()),
        Vec::<String>::new()
    );
    // The traces-only name in the file, the general one in the environment: the
    // service reads the environment's file, and that is the name said.
    let dir = temp_dir("doctor-tls-layers");
    std::fs::write(
        dir.join("coldstart.toml"),
        format!("[otel]\nexporter_otlp_traces_certificate = \"{readable}\"\n"),
    )
    .unwrap();
    let out = Command::new(DOCTOR)
        .args(["doctor", "--json"])
        .current_dir(&dir)
        .env_clear()
        .envs([
            https,
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ])
        .output()
        .unwrap();
    let v = succeeded(&out);
    let said = v["settings"]["problems"].as_array().unwrap();
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(
        said[0].as_str().unwrap().starts_with(
            "OTEL_EXPORTER_OTLP_CERTIFICATE names `/nonexistent/ca.pem`, which cannot be read here"
        ),
        "{said:#?}"
    );
}

/// The push job named after the service comes through the service name's variable;
/// it was shown as the default. Named by nothing, it is the service's executable.
#[test]
fn the_push_job_named_after_the_service_says_where_the_name_came_from() {
    let push = ("COLDSTART_METRICS_PUSH_URL", "http://gateway:9091");
    for (vars, value, via) in [
        (
            vec![push, ("OTEL_SERVICE_NAME", "checkout")],
            "checkout",
            "OTEL_SERVICE_NAME",
        ),
        (
            vec![push, ("OTEL_RESOURCE_ATTRIBUTES", "service.name=cart")],
            "cart",
            "OTEL_RESOURCE_ATTRIBUTES",
        ),
    ] {
        let values = values_with(&vars);
        let job = row(&values, "COLDSTART_METRICS_PUSH_JOB");
        assert_eq!(job["value"], value, "{vars:?}");
        assert_eq!(job["source"]["layer"], "environment", "{vars:?}");
        assert_eq!(job["source"]["via"], via, "{vars:?}");
    }
    // The name in the file, the attributes in the environment: the layer above wins.
    let dir = temp_dir("doctor-push-job");
    std::fs::write(
        dir.join("coldstart.toml"),
        "[otel]\nservice_name = \"from-file\"\n",
    )
    .unwrap();
    let out = Command::new(DOCTOR)
        .args(["doctor", "--json"])
        .current_dir(&dir)
        .env_clear()
        .envs([push, ("OTEL_RESOURCE_ATTRIBUTES", "service.name=cart")])
        .output()
        .unwrap();
    let v = succeeded(&out);
    let values = v["settings"]["values"].as_array().unwrap();
    let job = row(values, "COLDSTART_METRICS_PUSH_JOB");
    assert_eq!(
        (&job["value"], &job["source"]["via"]),
        (&"cart".into(), &"OTEL_RESOURCE_ATTRIBUTES".into())
    );
    let values = values_with(&[push, ("COLDSTART_METRICS_PUSH_JOB", "nightly")]);
    let job = row(&values, "COLDSTART_METRICS_PUSH_JOB");
    assert_eq!(job["source"]["via"], Value::Null);
    // Named by nothing: the service's executable, not doctor's own (it said
    // `cargo-coldstart`).
    let values = values_with(&[push]);
    let job = row(&values, "COLDSTART_METRICS_PUSH_JOB");
    assert_eq!(
        (&job["value"], &job["source"]["layer"]),
        (&"<executable>".into(), &"default".into())
    );
}

/// Where no file was read, doctor says which it looked for and what chose it: an
/// `APP_ENV` set for other reasons passed `coldstart.toml` by, and doctor said only
/// "none found".
#[test]
fn with_no_file_read_doctor_says_which_it_looked_for() {
    let dir = temp_dir("doctor-sought");
    std::fs::write(
        dir.join("coldstart.toml"),
        "[otel]\nservice_name = \"from-file\"\n",
    )
    .unwrap();
    let run = |vars: &[(&str, &str)], json: bool| {
        let out = Command::new(DOCTOR)
            .arg("doctor")
            .args(json.then_some("--json"))
            .current_dir(&dir)
            .env_clear()
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run(&[("APP_ENV", "production")], false);
    assert!(
        text.contains(
            "settings (file: none (config/production.toml not found; chosen by APP_ENV=production);"
        ),
        "{text}"
    );
    let v: Value = serde_json::from_str(&run(&[("APP_ENV", "production")], true)).unwrap();
    assert_eq!(v["settings"]["file"], Value::Null);
    assert_eq!(
        v["settings"]["file_sought"],
        "config/production.toml not found; chosen by APP_ENV=production"
    );
    let off = run(&[("COLDSTART_CONFIG", "off")], false);
    assert!(off.contains("(file: none (COLDSTART_CONFIG=off);"), "{off}");
    let v: Value = serde_json::from_str(&run(&[], true)).unwrap();
    assert_eq!(v["settings"]["file"], "coldstart.toml");
    assert_eq!(v["settings"]["file_sought"], Value::Null);
}

#[test]
fn doctor_shows_values_and_their_layers() {
    let dir = temp_dir("doctor-file");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/staging.toml"),
        "[coldstart]\nworker_threads = 3\nmetrics_addr = \"0.0.0.0:9100\"\n\
         [otel]\nservice_name = \"from-file\"\nexporter_otlp_headers = \"authorization=Bearer%20s3cret\"\n\
         bsp_max_queue_size = \"many\"\n",
    )
    .unwrap();
    let out = Command::new(DOCTOR)
        .args(["doctor", "--json"])
        .current_dir(&dir)
        .env_clear()
        .env("COLDSTART_ENV", "staging")
        .env("OTEL_SERVICE_NAME", "from-env")
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("s3cret"),
        "a header value was shown"
    );
    let v = succeeded(&out);
    let settings = &v["settings"];
    assert_eq!(settings["file"], "config/staging.toml");
    let row = |variable: &str| {
        settings["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["variable"] == variable)
            .unwrap()
            .clone()
    };
    let addr = row("COLDSTART_METRICS_ADDR");
    assert_eq!(addr["value"], "0.0.0.0:9100");
    assert_eq!(addr["source"]["layer"], "file");
    assert_eq!(addr["source"]["line"], 3);
    assert_eq!(addr["file_key"], "[coldstart] metrics_addr");
    let name = row("OTEL_SERVICE_NAME");
    assert_eq!(
        (&name["value"], &name["source"]["layer"]),
        (&"from-env".into(), &"environment".into())
    );
    assert_eq!(row("OTEL_PROPAGATORS")["source"]["layer"], "default");
    let queue = row("OTEL_BSP_MAX_QUEUE_SIZE");
    assert_eq!(
        (&queue["value"], &queue["source"]["rejected"]),
        (&"2048".into(), &true.into())
    );
    assert!(
        settings["problems"][0]
            .as_str()
            .unwrap()
            .contains("got `many` (config/staging.toml line 7, `[otel] bsp_max_queue_size`)")
    );
    assert_eq!(v["plan"]["worker_threads"], 3);
    assert_eq!(v["plan"]["reasons"]["worker_threads"]["origin"], "file");

    let text = Command::new(DOCTOR)
        .arg("doctor")
        .current_dir(&dir)
        .env_clear()
        .env("COLDSTART_ENV", "staging")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("  OTEL_SERVICE_NAME")
            && l.contains("from-file")
            && l.ends_with("config/staging.toml line 5")),
        "{text}"
    );
}

/// Metrics TLS asked for with a certificate and no key: `/metrics` is not served,
/// and doctor says so instead of an address from the environment and "plain HTTP";
/// the key that is missing is named in the problems, not shown as a value refused.
#[test]
fn doctor_says_metrics_are_not_served_when_their_tls_is_refused() {
    let v = succeeded(&doctor_with(&[
        ("COLDSTART_METRICS_ADDR", "0.0.0.0:9464"),
        ("COLDSTART_METRICS_TLS_CERT", "/etc/metrics.pem"),
    ]));
    let values = v["settings"]["values"].as_array().unwrap().clone();
    let addr = row(&values, "COLDSTART_METRICS_ADDR");
    assert_eq!(
        addr["value"], "off (its TLS settings were refused)",
        "{addr}"
    );
    assert_eq!(
        row(&values, "COLDSTART_METRICS_TLS_CERT")["value"],
        "/etc/metrics.pem"
    );
    let key = row(&values, "COLDSTART_METRICS_TLS_KEY");
    assert_eq!(key["value"], "(missing)", "{key}");
    assert_eq!(key["source"]["rejected"], false, "{key}");
    let problems = v["settings"]["problems"].to_string();
    assert!(problems.contains("COLDSTART_METRICS_TLS_KEY"), "{problems}");
}

/// `config/<env>.toml` where `config` is a file, not a directory, is a missing file:
/// fine, as the README says of any file `COLDSTART_CONFIG` does not name.
#[test]
fn an_environment_file_under_a_config_that_is_no_directory_is_missing() {
    let dir = temp_dir("doctor-config-file");
    std::fs::write(dir.join("config"), "not a directory\n").unwrap();
    let out = Command::new(DOCTOR)
        .args(["doctor", "--json"])
        .current_dir(&dir)
        .env_clear()
        .env("APP_ENV", "production")
        .output()
        .unwrap();
    let v = succeeded(&out);
    assert_eq!(v["settings"]["file"], Value::Null, "{v:#}");
}

/// Secrets a user hands coldstart (OTLP header values, the Pushgateway's password, a
/// key in the endpoint's query) appear in neither form of `doctor`'s output, from the
/// environment or the file.
#[test]
fn doctor_never_shows_secrets() {
    let dir = temp_dir("doctor-secrets");
    std::fs::write(
        dir.join("coldstart.toml"),
        "[otel]\nexporter_otlp_headers = \"x-api-key=file-s3cret\"\n",
    )
    .unwrap();
    for args in [&["doctor"][..], &["doctor", "--json"][..]] {
        let out = Command::new(DOCTOR)
            .args(args)
            .current_dir(&dir)
            .env_clear()
            .env(
                "COLDSTART_METRICS_PUSH_URL",
                "http://ci:push-s3cret@127.0.0.1:9091/?token=push-query-s3cret",
            )
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20env-s3cret",
            )
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://collector:4318/otlp?api-key=query-s3cret",
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // The push URL itself is shown, so the check is not vacuous.
        assert!(stdout.contains("127.0.0.1:9091"), "{stdout}");
        assert!(
            stdout.contains("collector:4318/otlp/v1/traces?<not shown>"),
            "{stdout}"
        );
        assert!(stdout.contains("127.0.0.1:9091/?<not shown>"), "{stdout}");
        for secret in [
            "push-s3cret",
            "push-query-s3cret",
            "env-s3cret",
            "file-s3cret",
            "query-s3cret",
        ] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "`doctor {args:?}` showed {secret}:\n{stdout}{stderr}"
            );
        }
    }
}

/// An OTLP setting has a general and a traces-only name, and both rows show the value
/// in use: each says which variable it came through. Headers the environment sets are
/// shown by name.
#[test]
fn doctor_says_which_otlp_variable_a_value_came_through() {
    let out = doctor_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k3y,x-team=a"),
    ]);
    let v = succeeded(&out);
    let row = |variable: &str| {
        let rows = v["settings"]["values"].as_array().unwrap();
        let row = rows.iter().find(|r| r["variable"] == variable).unwrap();
        (
            row["value"].as_str().unwrap().to_owned(),
            row["source"]["layer"].as_str().unwrap().to_owned(),
            row["source"]["via"].as_str().map(str::to_owned),
        )
    };
    let endpoint = "http://collector:4318/v1/traces".to_owned();
    let env = "environment".to_owned();
    assert_eq!(
        row("OTEL_EXPORTER_OTLP_ENDPOINT"),
        (endpoint.clone(), env.clone(), None)
    );
    assert_eq!(
        row("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        (
            endpoint,
            env.clone(),
            Some("OTEL_EXPORTER_OTLP_ENDPOINT".into())
        )
    );
    // The traces-only name wins, for the general row too.
    assert_eq!(
        row("OTEL_EXPORTER_OTLP_TIMEOUT"),
        (
            "2500".into(),
            env.clone(),
            Some("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT".into())
        )
    );
    let headers = row("OTEL_EXPORTER_OTLP_HEADERS");
    assert_eq!(headers.0, "x-api-key=<hidden>,x-team=<hidden>");
    assert_eq!(row("OTEL_EXPORTER_OTLP_CERTIFICATE").1, "default");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("k3y"));
}

/// A traces-only value that was refused, or is empty, leaves the general one in use:
/// the rows say the value came through the general variable.
#[test]
fn doctor_names_the_general_variable_when_the_traces_one_is_not_used() {
    let out = doctor_with(&[
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k3y"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-team=a,broken"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", " "),
    ]);
    let v = succeeded(&out);
    let rows = v["settings"]["values"].as_array().unwrap();
    let row = |variable: &str| rows.iter().find(|r| r["variable"] == variable).unwrap();
    for variable in [
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        let r = row(variable);
        assert_eq!(r["source"]["layer"], "environment", "{r}");
        assert_eq!(r["source"]["rejected"], false, "{r}");
        let general = variable.replace("_TRACES", "");
        assert_eq!(r["source"]["via"], general.as_str(), "{r}");
    }
    assert_eq!(
        row("OTEL_EXPORTER_OTLP_HEADERS")["value"],
        "x-api-key=<hidden>"
    );
    let problems = v["settings"]["problems"].to_string();
    assert!(
        problems.contains("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
        "the refusal is still said: {problems}"
    );
}

/// `OTEL_ATTRIBUTE_COUNT_LIMIT` is the span, event and link attribute limits where
/// their own variable is unset; those rows say so.
#[test]
fn doctor_says_an_attribute_limit_came_through_the_general_one() {
    let values = values_with(&[
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "5"),
        ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "3"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "256"),
    ]);
    let row = |variable: &str| {
        let r = row(&values, variable);
        (r["value"].clone(), r["source"]["via"].clone())
    };
    let through = json!("OTEL_ATTRIBUTE_COUNT_LIMIT");
    assert_eq!(row("OTEL_ATTRIBUTE_COUNT_LIMIT"), (json!("5"), Value::Null));
    assert_eq!(
        row("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"),
        (json!("5"), through.clone())
    );
    assert_eq!(
        row("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"),
        (json!("5"), through)
    );
    assert_eq!(
        row("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"),
        (json!("3"), Value::Null)
    );
    assert_eq!(
        row("OTEL_SPAN_EVENT_COUNT_LIMIT"),
        (json!("128"), Value::Null)
    );
    // The span's value length limit, the same way.
    assert_eq!(
        row("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
        (json!("256"), json!("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"))
    );
}

/// The log filter read from `RUST_LOG`, and the service name from `service.name` in
/// the resource attributes, are shown as coming through those variables, from the
/// environment (they showed as defaults).
#[test]
fn doctor_says_a_value_came_through_rust_log_or_the_resource_attributes() {
    let values = values_with(&[
        ("RUST_LOG", "warn"),
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=billing,team=a"),
    ]);
    let source = |variable: &str| {
        let r = row(&values, variable);
        (
            r["value"].clone(),
            r["source"]["layer"].clone(),
            r["source"]["via"].clone(),
        )
    };
    assert_eq!(
        source("COLDSTART_LOG_FILTER"),
        (json!("warn"), json!("environment"), json!("RUST_LOG"))
    );
    assert_eq!(
        source("OTEL_SERVICE_NAME"),
        (
            json!("billing"),
            json!("environment"),
            json!("OTEL_RESOURCE_ATTRIBUTES")
        )
    );
    // Its own variable still wins.
    let values = values_with(&[("RUST_LOG", "warn"), ("COLDSTART_LOG_FILTER", "debug")]);
    let r = row(&values, "COLDSTART_LOG_FILTER");
    assert_eq!(
        (&r["value"], &r["source"]["via"]),
        (&json!("debug"), &Value::Null)
    );
}

/// A variable overrides a more specific setting in the file: the rows say the value
/// came through the variable. An endpoint with user info is refused, and its password
/// is shown nowhere.
#[test]
fn doctor_says_a_variable_overrode_a_more_specific_file_setting() {
    let dir = temp_dir("doctor-layers");
    std::fs::write(
        dir.join("coldstart.toml"),
        "[otel]\nservice_name = \"from-file\"\n\
         exporter_otlp_traces_endpoint = \"http://file:4318/v1/traces\"\n",
    )
    .unwrap();
    let doctor = |endpoint: &str| {
        Command::new(DOCTOR)
            .args(["doctor", "--json"])
            .current_dir(&dir)
            .env_clear()
            .env("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .output()
            .unwrap()
    };
    let out = doctor("http://collector:4318");
    let v = succeeded(&out);
    let values = v["settings"]["values"].as_array().unwrap();
    let service = row(values, "OTEL_SERVICE_NAME");
    assert_eq!(service["value"], "from-env", "{service}");
    assert_eq!(service["source"]["via"], "OTEL_RESOURCE_ATTRIBUTES");
    let endpoint = row(values, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    assert_eq!(
        endpoint["value"], "http://collector:4318/v1/traces",
        "{endpoint}"
    );
    assert_eq!(endpoint["source"]["layer"], "environment");
    assert_eq!(endpoint["source"]["via"], "OTEL_EXPORTER_OTLP_ENDPOINT");

    let out = doctor("http://ci:s3cret@collector:4318");
    let v = succeeded(&out);
    let values = v["settings"]["values"].as_array().unwrap();
    let endpoint = row(values, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    assert_eq!(endpoint["source"]["rejected"], true, "{endpoint}");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{said}");
    assert!(!said.contains("s3cret"), "{said}");
}

/// A value with a line break (a variable's, or a file's through an escape) is shown
/// escaped in the readable output, on its own row: it cannot pass for rows of its own.
/// The file's path too.
#[test]
fn a_value_with_a_line_break_stays_on_its_row() {
    let dir = temp_dir("doctor-line-break");
    let path = dir.join("odd\nname.toml");
    std::fs::write(&path, "[coldstart]\nstrategy = \"minimal\"\n").unwrap();
    let forged = "checkout\n  COLDSTART_METRICS_ADDR   0.0.0.0:9464   default";
    let out = Command::new(DOCTOR)
        .arg("doctor")
        .env_clear()
        .env("OTEL_SERVICE_NAME", forged)
        .env("COLDSTART_CONFIG", &path)
        // A problem's line too: a file that cannot be read, named with its path.
        .env("COLDSTART_METRICS_TLS_CERT", "/nonexistent\nFORGED-ROW")
        .env("COLDSTART_METRICS_TLS_KEY", "/nonexistent/key")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("COLDSTART_METRICS_ADDR"))
        .collect();
    assert_eq!(
        rows.len(),
        2,
        "the real row, and the value that shows it: {text}"
    );
    assert!(
        rows.iter()
            .any(|l| l.trim_start().starts_with("OTEL_SERVICE_NAME")
                && l.contains("checkout\\n  COLDSTART_METRICS_ADDR")),
        "{text}"
    );
    assert!(text.contains("odd\\nname.toml"), "{text}");
    assert!(text.contains("/nonexistent\\nFORGED-ROW"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("FORGED-ROW")), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l == "name.toml; defaults < file < code < environment)"),
        "{text}"
    );
}

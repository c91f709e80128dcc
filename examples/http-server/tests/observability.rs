//! The observability stack (`examples/observability/`), validated without Docker:
//! images cannot be pulled here, so the files whose project ships a checker go
//! through it (docker-compose, promtool, amtool), the alert rules through promtool's
//! rule unit tests, and the dashboard's queries through a real Prometheus that
//! scrapes this example and evaluates the stack's recording rules. Jaeger's, Loki's,
//! Alloy's and Grafana's provisioning files have no checker here (README, "What is
//! validated").
//!
//! Under `CI=true` a missing tool fails; elsewhere the test says it is skipped.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use coldstart_test_support::{
    Reaper, free_port, get, poll, prometheus_query, start_prometheus, temp_dir, tool,
};

const SERVER: &str = env!("CARGO_BIN_EXE_http-server");

fn stack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../observability")
}

/// Runs `program args`, asserting it succeeds; returns what it printed.
fn checked(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(stack())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {}: {said}",
        program.display(),
        args.join(" ")
    );
    said
}

#[test]
fn the_compose_file_is_valid_and_every_file_it_mounts_is_in_the_repository() {
    let test = "the_compose_file_is_valid_and_every_file_it_mounts_is_in_the_repository";
    let Some(compose) = tool(test, "docker-compose", &["version"]) else {
        return;
    };
    // With the load generator's profile: Compose 2 leaves a service behind a profile
    // out of `config` unless it is asked for.
    let config = checked(
        &compose,
        &["-f", "docker-compose.yml", "--profile", "load", "config"],
    );
    let stack = stack().canonicalize().unwrap();
    let mut mounted = 0;
    // `volumes:` at some indentation, then its items: `- /absolute/source:/target[:ro]`
    // as docker-compose 1.x prints them, or `- type: bind` with `source: /absolute/source`
    // under it as Compose 2 does.
    let mut volumes_at = None;
    for line in config.lines() {
        let indent = line.len() - line.trim_start().len();
        if line.trim() == "volumes:" {
            volumes_at = Some(indent);
            continue;
        }
        // The items sit at the key's indentation; anything else there ends the list.
        if volumes_at
            .is_some_and(|at| indent < at || (indent == at && !line.trim().starts_with("- ")))
        {
            volumes_at = None;
        }
        let item = line.trim();
        let source = match item.strip_prefix("- ") {
            Some(long) if long.starts_with("type: ") => None,
            Some(short) => short.split(':').next(),
            None => item.strip_prefix("source: "),
        };
        let Some(source) = volumes_at
            .and(source)
            .filter(|s| *s != "/var/run/docker.sock")
        else {
            continue;
        };
        assert!(
            Path::new(source).starts_with(&stack),
            "{source} is outside the stack's folder"
        );
        assert!(
            Path::new(source).exists(),
            "{source} is mounted but missing"
        );
        mounted += 1;
    }
    assert_eq!(mounted, 8, "bind mounts found in:\n{config}");
    for service in [
        "app:",
        "prometheus:",
        "alertmanager:",
        "jaeger:",
        "loki:",
        "alloy:",
        "grafana:",
        "load:",
    ] {
        assert!(
            config.contains(&format!("\n  {service}\n")),
            "{service} missing"
        );
    }
    // Every service has a healthcheck, and the load generator is off by default.
    assert_eq!(config.matches("healthcheck:").count(), 7, "{config}");
    // `profiles:` then `- load`, however the version indents it.
    let profiles = config.split("profiles:").nth(1).unwrap_or_default();
    assert!(profiles.trim_start().starts_with("- load"), "{config}");
    assert!(stack.join("Dockerfile").exists());
    // Alloy ships the logs of the containers that carry the label it filters on: the
    // service's alone (by its compose name, `app`, it took any project's `app`).
    let alloy = std::fs::read_to_string(stack.join("alloy/config.alloy")).unwrap();
    assert!(
        alloy.contains(r#"values = ["coldstart.logs=ship"]"#),
        "{alloy}"
    );
    assert_eq!(
        config.matches("coldstart.logs: ship").count(),
        1,
        "{config}"
    );
    let app: Vec<&str> = config
        .lines()
        .skip_while(|l| *l != "  app:")
        .skip(1)
        .take_while(|l| l.starts_with("   "))
        .collect();
    assert!(
        app.iter().any(|l| l.trim() == "coldstart.logs: ship"),
        "the app's own label: {config}"
    );
}

#[test]
fn prometheus_and_alertmanager_files_pass_their_checkers_and_the_alerts_their_tests() {
    let test = "prometheus_and_alertmanager_files_pass_their_checkers_and_the_alerts_their_tests";
    let (Some(promtool), Some(amtool)) = (
        tool(test, "promtool", &["--version"]),
        tool(test, "amtool", &["--version"]),
    ) else {
        return;
    };
    // The config names its rules by their path in the container; check it with the
    // repository's rules in their place, so the rules are loaded too.
    let dir = temp_dir("stack-promtool");
    let config = prometheus_config(&dir, "app:9464");
    let said = checked(&promtool, &["check", "config", config.to_str().unwrap()]);
    assert!(said.contains("SUCCESS: 24 rules found"), "{said}");
    let said = checked(
        &promtool,
        &["check", "rules", "prometheus/rules/coldstart.yml"],
    );
    assert!(said.contains("SUCCESS: 24 rules found"), "{said}");
    let said = checked(
        &promtool,
        &["test", "rules", "prometheus/tests/coldstart.test.yml"],
    );
    assert!(said.contains("SUCCESS"), "{said}");
    let said = checked(&amtool, &["check-config", "alertmanager/alertmanager.yml"]);
    assert!(said.contains("SUCCESS"), "{said}");
    drop(dir);
}

/// The stack's prometheus.yml, written to `dir` with the rules at their repository
/// path and the service at `app`.
fn prometheus_config(dir: &Path, app: &str) -> PathBuf {
    let text = std::fs::read_to_string(stack().join("prometheus/prometheus.yml")).unwrap();
    let rules = stack().join("prometheus/rules").canonicalize().unwrap();
    assert!(text.contains("/etc/prometheus/rules/*.yml") && text.contains("app:9464"));
    let text = text
        .replace(
            "/etc/prometheus/rules/*.yml",
            &format!("{}/*.yml", rules.display()),
        )
        .replace("app:9464", app);
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every Prometheus query of the dashboard, with Grafana's variables filled in.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(stack().join("grafana/dashboards/cold-start.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            if target["datasource"]["uid"] != "prometheus" {
                continue;
            }
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$job", "app")
                .replace("$__rate_interval", "1m")
                .replace("$__range_s", "300")
                .replace("$__range", "5m");
            queries.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    queries
}

/// The example on free ports, its spans not exported, with `vars`; returns it and its
/// port and metrics port.
fn serve(vars: &[(&str, &str)]) -> (Reaper, u16, u16) {
    let (port, mport) = (free_port(), free_port());
    let server = Reaper(
        Command::new(SERVER)
            .env("PORT", port.to_string())
            .env("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}"))
            .env("OTEL_TRACES_EXPORTER", "none")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (server, port, mport)
}

/// Where the parenthesised group that `before` ends inside begins: just after its
/// `(` (the start when there is none).
fn group_start(before: &str) -> usize {
    let mut depth = 0;
    for (i, c) in before.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth == 0 => return i + 1,
            '(' => depth -= 1,
            _ => {}
        }
    }
    0
}

#[test]
fn every_dashboard_query_answers_from_a_real_scrape_of_the_service() {
    let test = "every_dashboard_query_answers_from_a_real_scrape_of_the_service";
    let Some(prometheus) = tool(test, "prometheus", &["--version"]) else {
        return;
    };
    let (_server, port, mport) = serve(&[]);
    assert!(
        poll(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .ok())
        .is_some(),
        "the server never listened"
    );
    // Traffic all along, so rates have something to see.
    let traffic = std::thread::spawn(move || {
        for _ in 0..150 {
            assert!(get(port).ends_with("hello\n"));
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let dir = temp_dir("stack-prometheus");
    let config = prometheus_config(&dir, &format!("127.0.0.1:{mport}"));
    // Scrape and evaluate every second instead of every five.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("scrape_interval: 5s", "scrape_interval: 1s")
        .replace("evaluation_interval: 5s", "evaluation_interval: 1s");
    std::fs::write(&config, text).unwrap();
    let (_prometheus, pport) = start_prometheus(&prometheus, &config, &dir);
    let query = |q: &str| prometheus_query(pport, q);
    // Two scrapes and the recording rules evaluated: the request rate is recorded.
    let ready = poll(Duration::from_secs(30), || {
        let ratio = query("job:http_requests:rate5m")?;
        (ratio["data"]["result"].as_array()?.first()?["value"][1] != "0").then_some(())
    });
    assert!(ready.is_some(), "the recording rules never saw the traffic");
    let queries = dashboard_queries();
    assert_eq!(queries.len(), 16, "{queries:?}");
    for (title, expr) in queries {
        let answer = query(&expr).unwrap_or_else(|| panic!("{title}: no answer to {expr}"));
        assert_eq!(answer["status"], "success", "{title}: {expr}: {answer}");
        let result = answer["data"]["result"].as_array().unwrap();
        assert!(
            !result.is_empty(),
            "{title}: `{expr}` found no series: a metric or label the service does not expose"
        );
        // A side that may rightly be empty has `or vector(0)` after it, which would
        // hide a metric or label misspelt in it: that side is asked on its own, a 5xx
        // selector in it widened to the 2xx this traffic has (a process started just
        // now is a new instance: the cold-start count finds it as it is).
        for (at, _) in expr.match_indices(" or vector(0)") {
            let side = &expr[group_start(&expr[..at])..at];
            let widened = side.replace(r#"status=~"5..""#, r#"status=~"2..""#);
            let answer =
                query(&widened).unwrap_or_else(|| panic!("{title}: no answer to {widened}"));
            assert!(
                !answer["data"]["result"].as_array().unwrap().is_empty(),
                "{title}: `{widened}`, before `or vector(0)`, found no series: {answer}"
            );
        }
        // The phases read as a timeline: each reached no sooner than the one before
        // it in the lifecycle (the panel sorts by time, so its order alone shows
        // nothing; ties are allowed).
        if title.starts_with("Start-up phases") {
            let at = |phase: &str| {
                result
                    .iter()
                    .find(|r| r["metric"]["phase"] == phase)
                    .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("{title}: no phase {phase}: {result:?}"))
            };
            let lifecycle = [
                "main",
                "config",
                "probe",
                "plan",
                "order",
                "runtime",
                "inits",
                "body",
                "first_response",
            ];
            let times: Vec<f64> = lifecycle.iter().map(|p| at(p)).collect();
            assert!(
                times.is_sorted(),
                "{title}: phases out of lifecycle order {lifecycle:?}: {times:?}"
            );
        }
    }
    traffic.join().unwrap();
    // The directory goes after Prometheus stops (declared before it, dropped after).
}

/// A process whose fallback timer fired before any response (the usual case after
/// the stack starts and nobody asks the service anything) has the `fallback` phase,
/// not `first_response`: the headline panel shows it too.
#[test]
fn the_first_response_panel_shows_a_start_ended_by_the_fallback_timer() {
    let test = "the_first_response_panel_shows_a_start_ended_by_the_fallback_timer";
    let Some(prometheus) = tool(test, "prometheus", &["--version"]) else {
        return;
    };
    let (_server, _, mport) = serve(&[("COLDSTART_FIRST_RESPONSE_FALLBACK", "1s")]);
    let dir = temp_dir("stack-fallback");
    let config = prometheus_config(&dir, &format!("127.0.0.1:{mport}"));
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("scrape_interval: 5s", "scrape_interval: 1s");
    std::fs::write(&config, text).unwrap();
    let (_prometheus, pport) = start_prometheus(&prometheus, &config, &dir);
    let (title, expr) = dashboard_queries()
        .into_iter()
        .find(|(title, _)| title == "Process start to first response")
        .unwrap();
    // No request is made: the metrics listener opens when the fallback timer fires.
    let answer = poll(Duration::from_secs(30), || {
        let answer = prometheus_query(pport, &expr)?;
        let result = answer["data"]["result"].as_array()?;
        (!result.is_empty()).then(|| result.clone())
    });
    let result = answer.unwrap_or_else(|| panic!("{title}: `{expr}` found no series"));
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(result[0]["metric"]["phase"], "fallback", "{result:?}");
    // The directory goes after Prometheus stops (declared before it, dropped after).
}

#[test]
fn grafana_provisions_every_data_source_the_dashboard_and_the_links_use() {
    let stack = stack();
    let sources =
        std::fs::read_to_string(stack.join("grafana/provisioning/datasources/datasources.yaml"))
            .unwrap();
    let uids: Vec<&str> = sources
        .lines()
        .filter_map(|l| l.trim().strip_prefix("uid: "))
        .collect();
    assert_eq!(uids, ["prometheus", "jaeger", "loki"]);
    // Links between them: a log line to its trace, a span to its log lines.
    let linked: Vec<&str> = sources
        .lines()
        .filter_map(|l| l.trim().strip_prefix("datasourceUid: "))
        .collect();
    assert_eq!(linked, ["loki", "jaeger"]);
    let text = std::fs::read_to_string(stack.join("grafana/dashboards/cold-start.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut used = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        used.push(panel["datasource"]["uid"].as_str().unwrap().to_owned());
        for target in panel["targets"].as_array().unwrap() {
            used.push(target["datasource"]["uid"].as_str().unwrap().to_owned());
        }
    }
    for uid in &used {
        assert!(uids.contains(&uid.as_str()), "the dashboard uses `{uid}`");
    }
    assert!(used.iter().any(|u| u == "loki"), "no log panel");
    // The log line's trace id is what the Loki link matches: the JSON field name the
    // service writes.
    assert!(sources.contains(r#"matcherRegex: '"trace_id":"(\w+)"'"#));
    // The provider reads the folder compose mounts the dashboards into.
    let provider =
        std::fs::read_to_string(stack.join("grafana/provisioning/dashboards/dashboards.yaml"))
            .unwrap();
    let compose = std::fs::read_to_string(stack.join("docker-compose.yml")).unwrap();
    assert!(provider.contains("path: /var/lib/grafana/dashboards"));
    assert!(compose.contains("./grafana/dashboards:/var/lib/grafana/dashboards:ro"));
}

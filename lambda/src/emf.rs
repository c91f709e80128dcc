/*!
Metrics as CloudWatch Embedded Metric Format (EMF) lines on stdout: Prometheus cannot
scrape a function that is frozen between invocations, while Lambda ships every stdout
line to CloudWatch Logs, which turns EMF records into metrics with no agent, no
extension and no request.

One record per invocation, written after its response has been posted: `ColdStart`
(1 on a cold start: the first invocation of the process, unless the environment was
made ready ahead of requests or the invocation came more than 10 s after init; else
0), `InitDuration` (on a cold start only: process start to the first `/next`, ms), `Duration` (the invocation,
from event received to response posted, ms) and `Errors` (1 when the handler returned
an error or panicked, or the invocation timed out). The dimension is `function`; the
invocation id goes along as a property, so a metric can be followed to its log lines.
An invocation still running shortly before its deadline gets its record then, with
`Errors` 1 and the property `"timed_out": true` (Lambda would stop it before any later
record), and its `Duration` up to that moment.
*/

use std::time::Duration;

use serde_json::{Value, json};

/// The namespace when `COLDSTART_EMF_NAMESPACE` does not name one.
pub const DEFAULT_NAMESPACE: &str = "coldstart";

/// What one invocation's record says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record<'a> {
    pub(crate) function: &'a str,
    pub(crate) invocation_id: &'a str,
    pub(crate) cold: bool,
    pub(crate) init: Option<Duration>,
    pub(crate) duration: Duration,
    pub(crate) error: bool,
    /// Recorded before the deadline with the handler still running.
    pub(crate) timed_out: bool,
}

fn ms(d: Duration) -> f64 {
    // Three decimals: microseconds, as the harness measures.
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Record<'_> {
    /// The record as one EMF JSON line (no newline).
    pub(crate) fn render(&self, namespace: &str, timestamp_ms: u64) -> String {
        let mut metrics = vec![json!({"Name": "ColdStart", "Unit": "Count"})];
        let mut record = json!({
            "function": self.function,
            "faas.invocation_id": self.invocation_id,
            "ColdStart": u8::from(self.cold),
            "Duration": ms(self.duration),
            "Errors": u8::from(self.error),
        });
        if let (Some(init), Value::Object(fields)) = (self.init, &mut record) {
            metrics.push(json!({"Name": "InitDuration", "Unit": "Milliseconds"}));
            fields.insert("InitDuration".to_owned(), json!(ms(init)));
        }
        if let (true, Value::Object(fields)) = (self.timed_out, &mut record) {
            fields.insert("timed_out".to_owned(), json!(true));
        }
        metrics.push(json!({"Name": "Duration", "Unit": "Milliseconds"}));
        metrics.push(json!({"Name": "Errors", "Unit": "Count"}));
        if let Value::Object(fields) = &mut record {
            fields.insert(
                "_aws".to_owned(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [["function"]],
                        "Metrics": metrics,
                    }],
                }),
            );
        }
        record.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cold_record_declares_every_metric_it_carries() {
        let r = Record {
            function: "hello",
            invocation_id: "abc",
            cold: true,
            init: Some(Duration::from_micros(4321)),
            duration: Duration::from_micros(250),
            error: false,
            timed_out: false,
        };
        let line: Value = serde_json::from_str(&r.render("ns", 1_700_000_000_000)).unwrap();
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "ns");
        assert_eq!(declared["Dimensions"], json!([["function"]]));
        let names: Vec<&str> = declared["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ColdStart", "InitDuration", "Duration", "Errors"]);
        for name in names {
            assert!(line[name].is_number(), "{name} declared but not carried");
        }
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert!(line.get("timed_out").is_none());
        assert_eq!(line["InitDuration"], 4.321);
        assert_eq!(line["Duration"], 0.25);
        assert_eq!(
            (line["ColdStart"].as_u64(), line["Errors"].as_u64()),
            (Some(1), Some(0))
        );
    }

    #[test]
    fn a_warm_record_has_no_init_duration() {
        let r = Record {
            function: "f",
            invocation_id: "id",
            cold: false,
            init: None,
            duration: Duration::from_millis(3),
            error: true,
            timed_out: true,
        };
        let line: Value = serde_json::from_str(&r.render(DEFAULT_NAMESPACE, 0)).unwrap();
        assert!(line.get("InitDuration").is_none());
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(line["Errors"], 1);
        assert_eq!(line["timed_out"], true, "a property, not a metric");
    }
}

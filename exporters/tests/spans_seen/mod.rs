//! A plugin that keeps each span as it ended: its name, its trace id, its attributes
//! as text, and its error description when its status is an error. Registered
//! wherever this module is included.

#![allow(dead_code)] // each test reads its own part

use std::collections::BTreeMap;
use std::sync::Mutex;

use coldstart_exporters::plugin::Plugin;
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;

/// A span as it ended.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) name: String,
    /// The span's trace id, as hex.
    pub(crate) trace_id: String,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) error: Option<String>,
}

pub(crate) static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

struct Witness;

impl Plugin for Witness {
    fn name(&self) -> &str {
        "witness"
    }
    fn on_span_end(&self, span: &SpanData) {
        let attributes = span
            .attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        let error = match &span.status {
            Status::Error { description } => Some(description.to_string()),
            _ => None,
        };
        SEEN.lock().unwrap().push(Seen {
            name: span.name.to_string(),
            trace_id: span.span_context.trace_id().to_string(),
            attributes,
            error,
        });
    }
}

coldstart_exporters::plugin!(WITNESS: Witness = Witness, priority = 0);

//! A plugin that writes down what it sees: each span's name (`span NAME`) and each
//! problem's kind (`error KIND`), in order. Registered wherever this module is included.

use std::sync::Mutex;

use coldstart_exporters::plugin::{Plugin, Reported};
use opentelemetry_sdk::trace::SpanData;

pub(crate) static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Witness;

impl Plugin for Witness {
    fn name(&self) -> &str {
        "witness"
    }
    fn on_span_end(&self, span: &SpanData) {
        SEEN.lock().unwrap().push(format!("span {}", span.name));
    }
    fn on_error(&self, error: &Reported<'_>) {
        SEEN.lock().unwrap().push(format!("error {}", error.kind));
    }
}

coldstart_exporters::plugin!(WITNESS: Witness = Witness, priority = 0);

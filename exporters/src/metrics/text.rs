//! Writes metric families in the Prometheus text format (0.0.4): the metrics that are
//! sampled at scrape time and never kept in the registry.

use std::fmt::Write;

/// The type of a family.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
}

/// Appends one family: `# HELP`, `# TYPE`, then one line per sample. A sample's
/// labels are `(name, value)` pairs; values are escaped here. Writes nothing when
/// there are no samples.
pub(crate) fn family<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    kind: Kind,
    samples: impl IntoIterator<Item = (&'a [(&'a str, &'a str)], f64)>,
) {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return;
    }
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    for (labels, value) in samples {
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"");
                escape(out, v);
                out.push('"');
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }
}

/// One unlabelled sample.
pub(crate) fn single(out: &mut String, name: &str, help: &str, kind: Kind, value: f64) {
    family(out, name, help, kind, [(&[][..], value)]);
}

fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_help_type_and_escaped_labels() {
        let mut out = String::new();
        family(
            &mut out,
            "x_total",
            "An x.",
            Kind::Counter,
            [(&[("name", "a\"b\\c\nd"), ("k", "v")][..], 2.5)],
        );
        assert_eq!(
            out,
            "# HELP x_total An x.\n# TYPE x_total counter\nx_total{name=\"a\\\"b\\\\c\\nd\",k=\"v\"} 2.5\n"
        );
    }

    #[test]
    fn an_empty_family_is_left_out() {
        let mut out = String::new();
        family(&mut out, "x", "An x.", Kind::Gauge, []);
        assert!(out.is_empty());
    }
}

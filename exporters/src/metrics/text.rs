//! Writes metric families in the Prometheus text format (0.0.4): the metrics that are
//! sampled at scrape time and never kept in the registry.

use std::fmt::Write;

/// The type of a family.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The name the text format gives the type.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// `# HELP` and `# TYPE` of a family. The help text escapes backslashes and line
/// breaks, as the format asks (a lone backslash would make the scrape unreadable).
pub(crate) fn header(out: &mut String, name: &str, help: &str, kind: Kind) {
    let _ = write!(out, "# HELP {name} ");
    escape(out, help, false);
    let _ = write!(out, "\n# TYPE {name} {}\n", kind.name());
}

/// `{k="v",...}` with the values escaped; nothing when there are no labels.
pub(crate) fn labels<K: AsRef<str>, V: AsRef<str>>(
    out: &mut String,
    pairs: impl IntoIterator<Item = (K, V)>,
) {
    let start = out.len();
    for (k, v) in pairs {
        out.push(if out.len() == start { '{' } else { ',' });
        let _ = write!(out, "{}=\"", k.as_ref());
        escape(out, v.as_ref(), true);
        out.push('"');
    }
    if out.len() != start {
        out.push('}');
    }
}

/// Appends one family: `# HELP`, `# TYPE`, then one line per sample. A sample's
/// labels are `(name, value)` pairs; values are escaped here. Writes nothing when
/// there are no samples.
pub(crate) fn family<'a, L: AsRef<[(&'a str, &'a str)]>>(
    out: &mut String,
    name: &str,
    help: &str,
    kind: Kind,
    samples: impl IntoIterator<Item = (L, f64)>,
) {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return;
    }
    header(out, name, help, kind);
    for (pairs, value) in samples {
        out.push_str(name);
        labels(out, pairs.as_ref().iter().copied());
        let _ = writeln!(out, " {}", Float(value));
    }
}

/// A sample value as the text format spells it: `+Inf`, `-Inf` and `NaN` (Rust's own
/// `inf` is not in the grammar; Go's parser takes it, stricter ones refuse the page).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Float(pub(crate) f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            v if v == f64::INFINITY => f.write_str("+Inf"),
            v if v == f64::NEG_INFINITY => f.write_str("-Inf"),
            v if v.is_nan() => f.write_str("NaN"),
            v => write!(f, "{v}"),
        }
    }
}

/// One unlabelled sample.
pub(crate) fn single(out: &mut String, name: &str, help: &str, kind: Kind, value: f64) {
    family(out, name, help, kind, [(&[][..], value)]);
}

/// `text`, families written here, with the labels named in `grouping` written as
/// `exported_<name>`: a push's grouping labels, which the gateway sets on every
/// series it takes, so that series told apart by them would clash and the push be
/// refused. Calls `renamed` with each label name it renames.
pub(crate) fn export_grouping_labels(
    text: &str,
    grouping: &[&str],
    mut renamed: impl FnMut(&str),
) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let Some((name, mut rest)) = line.split_once('{').filter(|_| !line.starts_with('#')) else {
            out.push_str(line);
            continue;
        };
        out.push_str(name);
        out.push('{');
        // `key="value"` pairs up to `}`; a value's `"` and `\` are escaped with `\`.
        while let Some((key, after)) = rest.split_once("=\"") {
            if grouping.contains(&key) {
                renamed(key);
                out.push_str("exported_");
            }
            out.push_str(key);
            out.push_str("=\"");
            let bytes = after.as_bytes();
            let mut end = 0;
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let end = (end + 1).min(after.len());
            out.push_str(&after[..end]);
            rest = &after[end..];
            match rest.strip_prefix(',') {
                Some(next) => {
                    out.push(',');
                    rest = next;
                }
                None => break,
            }
        }
        out.push_str(rest);
    }
    out
}

/// Appends `value` with backslashes and line breaks escaped, and double quotes too
/// when `quotes` (label values are quoted; help text is not).
fn escape(out: &mut String, value: &str, quotes: bool) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' if quotes => out.push_str("\\\""),
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
    fn grouping_labels_are_written_as_exported() {
        let mut text = String::new();
        family(
            &mut text,
            "x_total",
            "An x, {reason=\"in help\"}.",
            Kind::Counter,
            [
                (&[("signal", "spans"), ("reason", "full")][..], 1.0),
                (&[("reason", "a\",reason=\"b\\"), ("job", "j")][..], 2.0),
            ],
        );
        single(&mut text, "plain", "No labels.", Kind::Gauge, 3.0);
        let mut renamed = Vec::new();
        let out = export_grouping_labels(&text, &["job", "reason"], |k| renamed.push(k.to_owned()));
        assert_eq!(
            out,
            text.replace(
                "{signal=\"spans\",reason=",
                "{signal=\"spans\",exported_reason="
            )
            .replace("{reason=\"a", "{exported_reason=\"a")
            .replace(",job=", ",exported_job=")
        );
        assert_eq!(renamed, ["reason", "reason", "job"]);
        assert!(
            out.contains("# HELP x_total An x, {reason=\"in help\"}.\n"),
            "{out}"
        );
        assert_eq!(export_grouping_labels(&text, &[], |_| ()), text);
    }

    #[test]
    fn help_text_escapes_backslashes_and_line_breaks() {
        let mut out = String::new();
        header(&mut out, "x", "C:\\temp\nsecond line", Kind::Gauge);
        assert_eq!(out, "# HELP x C:\\\\temp\\nsecond line\n# TYPE x gauge\n");
    }

    #[test]
    fn an_empty_family_is_left_out() {
        let mut out = String::new();
        family(
            &mut out,
            "x",
            "An x.",
            Kind::Gauge,
            None::<(&[(&str, &str)], f64)>,
        );
        assert!(out.is_empty());
    }
}

//! A figure the probe found, together with where it came from. An unknown figure says
//! why it is unknown; nothing here formats a string until someone prints it.

use std::fmt;

use crate::plan::settings::OneLine;

/// One figure of the budget: a value, or `None` when it is unknown, and its source.
///
/// ```
/// use coldstart_bootstrap::{Figure, Source};
/// let f = Figure::known(2.0, Source::Affinity);
/// assert_eq!(f.value, Some(2.0));
/// assert_eq!(f.source.to_string(), "sched_getaffinity");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Figure<T> {
    /// The value, or `None` when it could not be found out.
    pub value: Option<T>,
    /// Where the value came from, or why it is unknown.
    pub source: Source,
}

impl<T> Figure<T> {
    /// A known value.
    pub fn known(value: T, source: Source) -> Self {
        Figure {
            value: Some(value),
            source,
        }
    }

    /// An unknown value, with the reason.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Figure {
            value: None,
            source: Source::Unknown(reason.into()),
        }
    }
}

/// Where a figure came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A cgroup v1 file (the path that held the limiting value).
    CgroupV1(String),
    /// A cgroup v2 file (the path that held the limiting value).
    CgroupV2(String),
    /// The CPU affinity mask of the process (`sched_getaffinity`), which also reflects
    /// the cpuset the kernel confines the process to.
    Affinity,
    /// An AWS Lambda environment variable.
    Lambda(&'static str),
    /// The machine's totals (`sysinfo`, online CPUs).
    Host(&'static str),
    /// A test or caller supplied the value.
    Given,
    /// The figure is unknown; the text says why.
    Unknown(String),
}

/// A cgroup's name may hold any byte but `/` and a line break, and a reason may name
/// one or quote a file: `doctor` and the start-up report print each on a line of its
/// own, with control characters escaped.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::CgroupV1(path) => write!(f, "cgroup v1 {}", OneLine(path)),
            Source::CgroupV2(path) => write!(f, "cgroup v2 {}", OneLine(path)),
            Source::Affinity => f.write_str("sched_getaffinity"),
            Source::Lambda(var) => write!(f, "{var}"),
            Source::Host(what) => write!(f, "host {what}"),
            Source::Given => f.write_str("given"),
            Source::Unknown(why) => write!(f, "unknown: {}", OneLine(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup named with an escape sequence, or a reason naming one, is shown with
    /// it escaped: printed raw, it moved the terminal's cursor in `doctor`'s output.
    #[test]
    fn control_characters_in_a_source_are_escaped() {
        let named = Source::CgroupV1("/app\u{1b}[2J\tx".into()).to_string();
        assert_eq!(named, "cgroup v1 /app\\u{1b}[2J\\tx");
        let why = Source::Unknown("cannot read /a\u{7}b".into()).to_string();
        assert_eq!(why, "unknown: cannot read /a\\u{7}b");
        // Text already escaped stays as it is.
        let again = Source::Unknown(named.clone()).to_string();
        assert_eq!(again, format!("unknown: {named}"));
    }
}

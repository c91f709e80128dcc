/*!
Telemetry problems: what was dropped, and one stderr line per kind of problem.

A collector that is down must not turn into a log storm: each kind of problem is
printed the first time it happens, then at most once a minute with the number of
times it happened since it was last printed. Plugins ([`mod@crate::plugin`]) see every
report. A report takes one lock and looks through the kinds seen; it allocates only
the first time a kind is seen, and for the message when a plugin is installed or the
line is printed.
*/
// Without `metrics` or `tracing` nothing is exported, so nothing reports.
#![cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why telemetry was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// A span did not fit in the export queue.
    SpanQueueFull = 0,
    /// A span was in a batch the collector did not accept in time.
    SpanExportFailed = 1,
    /// A push to the Pushgateway failed.
    PushFailed = 2,
    /// The collector took a batch but rejected some of its spans (an OTLP partial
    /// success).
    SpanRejected = 3,
    /// A metric sample of a name past the limit on names (a program making names
    /// from data).
    MetricNameLimit = 4,
}

impl Dropped {
    /// Every reason, for the `coldstart_telemetry_dropped_total` series.
    pub const ALL: [Dropped; 5] = [
        Dropped::SpanQueueFull,
        Dropped::SpanExportFailed,
        Dropped::SpanRejected,
        Dropped::PushFailed,
        Dropped::MetricNameLimit,
    ];

    /// The `signal` label.
    pub fn signal(self) -> &'static str {
        match self {
            Dropped::SpanQueueFull | Dropped::SpanExportFailed | Dropped::SpanRejected => "spans",
            Dropped::PushFailed | Dropped::MetricNameLimit => "metrics",
        }
    }

    /// The `reason` label.
    pub fn reason(self) -> &'static str {
        match self {
            Dropped::SpanQueueFull => "queue_full",
            Dropped::SpanExportFailed => "export_failed",
            Dropped::PushFailed => "push_failed",
            Dropped::SpanRejected => "rejected",
            Dropped::MetricNameLimit => "name_limit",
        }
    }
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static DROPPED: [AtomicU64; Dropped::ALL.len()] = [ZERO; Dropped::ALL.len()];

/// Counts `n` items dropped for `why`.
pub(crate) fn drop_count(why: Dropped, n: u64) {
    DROPPED[why as usize].fetch_add(n, Ordering::Relaxed);
}

/// How many items were dropped for `why` since start-up.
pub fn dropped(why: Dropped) -> u64 {
    DROPPED[why as usize].load(Ordering::Relaxed)
}

/// `text` from outside (a collector's message) made fit for one line of a report: at
/// most `max` characters, trimmed, control characters as spaces, and the characters
/// that reorder text on a terminal (bidirectional controls) left out.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let reorders = |c: char| {
        matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
    };
    text.trim()
        .chars()
        .filter(|&c| !reorders(c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

/// A panic's message, made one line as [`one_line`] makes a collector's.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    one_line(&coldstart_runtime::panics::panic_message(panic), 200)
}

/// How often a kind of problem may be printed again.
const QUIET: Duration = Duration::from_secs(60);

struct Seen {
    kind: &'static str,
    /// What the problem is about, for kinds reported per subject ([`report_about`]);
    /// empty otherwise.
    subject: String,
    last: Instant,
    suppressed: u64,
    /// Every report of the kind, printed or not (read by tests).
    #[cfg_attr(not(test), allow(dead_code))]
    reports: u64,
}

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

/// Prints `message` on stderr as `coldstart: <message>` unless a problem of the same
/// `kind` was printed in the last minute; then it is only counted, and the count is
/// printed with the next message of that kind.
pub fn report(kind: &'static str, message: impl FnOnce() -> String) {
    report_about(kind, "", message);
}

/// [`report`], counted apart for each `subject` of the kind (a metric's name, say):
/// where several subjects have the problem at once, each is named once a minute, not
/// only the first. For subjects a program's code fixes (its metrics' names, not
/// values), so that their number stays bounded.
pub fn report_about(kind: &'static str, subject: &str, message: impl FnOnce() -> String) {
    let admitted = admit(kind, subject, Instant::now());
    let plugins = crate::plugin::any();
    if admitted.is_none() && !plugins {
        return;
    }
    let message = message();
    if plugins {
        let reported = crate::plugin::Reported {
            kind,
            message: &message,
        };
        crate::plugin::each(|p| p.on_error(&reported));
    }
    match admitted {
        Some((0, _)) => coldstart_bootstrap::say!("coldstart: {message}"),
        Some((n, since)) => {
            coldstart_bootstrap::say!("coldstart: {message} {}", held_back(n, since))
        }
        None => {}
    }
}

/// What a printed line adds about the `n` held back since the kind was last printed,
/// `since` ago: not "in the last minute", which they may not have been.
fn held_back(n: u64, since: Duration) -> String {
    format!(
        "({n} more like it in the {} s since it was last said)",
        since.as_secs()
    )
}

/// Whether a problem of `kind` may be printed at `now`: `Some((held back since the
/// last print, time since the last print))`, or `None` to stay quiet.
fn admit(kind: &'static str, subject: &str, now: Instant) -> Option<(u64, Duration)> {
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let Some(s) = seen
        .iter_mut()
        .find(|s| s.kind == kind && s.subject == subject)
    else {
        seen.push(Seen {
            kind,
            subject: subject.to_owned(),
            last: now,
            suppressed: 0,
            reports: 1,
        });
        return Some((0, Duration::ZERO));
    };
    s.reports += 1;
    let since = now.duration_since(s.last);
    if since >= QUIET {
        s.last = now;
        Some((std::mem::take(&mut s.suppressed), since))
    } else {
        s.suppressed += 1;
        None
    }
}

/// The subjects problems of `kind` have been reported about in this process.
#[cfg(all(test, feature = "metrics"))]
pub(crate) fn subjects(kind: &str) -> Vec<String> {
    let seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    seen.iter()
        .filter(|s| s.kind == kind)
        .map(|s| s.subject.clone())
        .collect()
}

/// How many problems of `kind` about `subject` have been reported in this process,
/// printed or not.
#[cfg(all(test, feature = "metrics"))]
pub(crate) fn reports_about(kind: &str, subject: &str) -> u64 {
    reports_where(|s| s.kind == kind && s.subject == subject)
}

/// How many problems of `kind` have been reported in this process, printed or not,
/// whatever their subject.
#[cfg(test)]
pub(crate) fn reports(kind: &str) -> u64 {
    reports_where(|s| s.kind == kind)
}

/// How many problems of the kinds and subjects `counted` takes have been reported.
#[cfg(test)]
fn reports_where(counted: impl Fn(&Seen) -> bool) -> u64 {
    let seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    seen.iter().filter(|s| counted(s)).map(|s| s.reports).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_printed_once_a_minute_with_the_count_between() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let count = |said: Option<(u64, Duration)>| said.map(|(n, _)| n);
        assert_eq!(count(admit("test-storm", "", t0)), Some(0));
        for s in 1..=59 {
            assert_eq!(admit("test-storm", "", at(s)), None);
        }
        assert_eq!(count(admit("test-storm", "", at(60))), Some(59));
        assert_eq!(
            count(admit("test-other", "", t0)),
            Some(0),
            "kinds are counted apart"
        );
        // Subjects of one kind too: the second is named in the same minute.
        assert_eq!(count(admit("test-storm", "b", at(61))), Some(0));
        assert_eq!(admit("test-storm", "b", at(62)), None);
        // One held back 30 s after a line, then quiet for three hours: the next line
        // says when the one held back came, not "in the last minute".
        assert_eq!(count(admit("test-storm", "", at(90))), None);
        let (n, since) = admit("test-storm", "", at(60 + 3 * 3600)).unwrap();
        assert_eq!(
            held_back(n, since),
            "(1 more like it in the 10800 s since it was last said)"
        );
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let before = dropped(Dropped::PushFailed);
        drop_count(Dropped::PushFailed, 3);
        // At least: the push tests count failed pushes in the same process-wide
        // counter, concurrently.
        assert!(dropped(Dropped::PushFailed) >= before + 3);
        assert_eq!(Dropped::PushFailed.signal(), "metrics");
    }
}

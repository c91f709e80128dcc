//! The progress of a long measurement on stderr: a bar on a terminal, a line per
//! tenth of the runs in a log. It never fails a run: where stderr is gone, the bar
//! is lost, not the measurement.

use std::io::Write;

/// Set while a progress bar is drawn and not finished: its line has no end yet.
static BAR_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ends an unfinished progress bar's line, so that what is said next (an error) is on
/// a line of its own.
pub fn end_progress_line() {
    if BAR_OPEN.swap(false, std::sync::atomic::Ordering::AcqRel) {
        coldstart_bootstrap::say!("");
    }
}

/// A progress bar on a terminal; a line per tenth of the work in a log.
pub fn progress(label: &str) -> impl FnMut(usize, usize) + '_ {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    move |done, total| {
        if !terminal {
            if done * 10 / total.max(1) != (done - 1) * 10 / total.max(1) {
                coldstart_bootstrap::say!("{label}: {done}/{total} runs");
            }
            return;
        }
        let width = 30;
        let filled = done * width / total.max(1);
        // Where stderr is gone (a pipe closed early), the bar is lost, not the run.
        let _ = write!(
            std::io::stderr(),
            "\r{label} [{}{}] {done}/{total}",
            "#".repeat(filled),
            " ".repeat(width - filled)
        );
        BAR_OPEN.store(done < total, std::sync::atomic::Ordering::Release);
        if done == total {
            coldstart_bootstrap::say!("");
        }
        let _ = std::io::stderr().flush();
    }
}

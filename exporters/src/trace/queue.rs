/*!
The span queue: one bounded queue that holds spans from the first instruction and
feeds the OTLP exporter once it has started.

Before the exporter starts (that is, before the first response), ended spans wait
here, so the cold-start request's own trace is exported. After, a task on the
program's runtime exports a batch every `OTEL_BSP_SCHEDULE_DELAY` or as soon as a
batch is full. A span that does not fit is dropped and counted; a batch the collector
does not take within the export timeout is dropped and counted. No thread is started,
and ending a span is one short lock and a push.
*/

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::sync::Notify;

use crate::config;
use crate::problem::{self, Dropped};

/// The shared queue.
pub(crate) struct Queue {
    /// Oldest first; batches are taken from the front.
    spans: Mutex<VecDeque<SpanData>>,
    settings: config::Queue,
    wake: Notify,
    /// Set once the exporter runs: from then on a full batch wakes it.
    exporting: OnceLock<()>,
    /// Set when the exporter could not be built: spans are counted as dropped, not kept.
    discarding: OnceLock<()>,
    /// Spans in the batch being exported now (0 between exports).
    in_flight: AtomicU64,
}

impl Queue {
    pub(crate) fn new(settings: config::Queue) -> Arc<Queue> {
        Arc::new(Queue {
            spans: Mutex::new(VecDeque::new()),
            settings,
            wake: Notify::new(),
            exporting: OnceLock::new(),
            discarding: OnceLock::new(),
            in_flight: AtomicU64::new(0),
        })
    }

    pub(crate) fn push(&self, span: SpanData) {
        let mut spans = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        // Read under the lock `discard` sets it under: read before, a span pushed
        // just after the discard took the queue stayed there, neither sent nor counted.
        if self.discarding.get().is_some() {
            drop(spans);
            problem::drop_count(Dropped::SpanExportFailed, 1);
            return;
        }
        if spans.len() >= self.settings.max_spans {
            drop(spans);
            problem::drop_count(Dropped::SpanQueueFull, 1);
            let max = self.settings.max_spans;
            problem::report("span-queue-full", || {
                format!(
                    "traces: the span queue is full ({max} spans); spans are dropped and counted (OTEL_BSP_MAX_QUEUE_SIZE sets its size)"
                )
            });
            return;
        }
        spans.push_back(span);
        // With no delay, each span is worth an export.
        let full = spans.len() >= self.settings.batch || self.settings.delay.is_zero();
        drop(spans);
        if full && self.exporting.get().is_some() {
            self.wake.notify_one();
        }
    }

    /// Drops what waits and everything after it, counting it as failed exports:
    /// there is no exporter to give it to. Returns how many spans were waiting.
    pub(crate) fn discard(&self) -> usize {
        let waiting = {
            let mut spans = self.spans.lock().unwrap_or_else(|p| p.into_inner());
            let _ = self.discarding.set(());
            std::mem::take(&mut *spans)
        };
        problem::drop_count(Dropped::SpanExportFailed, waiting.len() as u64);
        waiting.len()
    }

    /// Spans waiting now.
    pub(crate) fn len(&self) -> usize {
        self.spans.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// How many spans are in an export not answered yet.
    pub(crate) fn in_flight(&self) -> usize {
        usize::try_from(self.in_flight.load(Ordering::Acquire)).unwrap_or(usize::MAX)
    }

    /// Everything waiting, oldest first.
    #[cfg(test)]
    pub(crate) fn take_all(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(|p| p.into_inner())).into()
    }

    /// The next batch, counted in flight before the lock is let go: a `finish` at the
    /// same moment finds each span either still queued or in flight, never in neither.
    /// Taken from the front of a ring, so a long queue is not moved for each batch,
    /// under the lock every span's end takes; emptied, it gives back what a burst
    /// (a collector away for a while) made it hold beyond one batch.
    fn take_batch(&self) -> Vec<SpanData> {
        let mut spans = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        let n = spans.len().min(self.settings.batch);
        self.in_flight.store(n as u64, Ordering::Release);
        let batch = spans.drain(..n).collect();
        if spans.is_empty() && spans.capacity() > self.settings.batch {
            spans.shrink_to(self.settings.batch);
        }
        batch
    }

    /// Exports on a schedule until the program ends. The exporter is shared with
    /// [`Queue::flush`] through `exporter`'s lock so that batches never overlap.
    pub(crate) async fn run<E: SpanExporter>(
        self: Arc<Self>,
        exporter: Arc<tokio::sync::Mutex<E>>,
    ) {
        let _ = self.exporting.set(());
        loop {
            self.flush(&exporter, None).await;
            if self.settings.delay.is_zero() {
                // A timeout of 0 would make this loop spin while nothing is queued.
                self.wake.notified().await;
            } else {
                let _ = tokio::time::timeout(self.settings.delay, self.wake.notified()).await;
            }
        }
    }

    /// The last export, at shutdown: everything waiting, within `deadline`. What it
    /// leaves behind (still queued, or in a batch the scheduled export has not seen
    /// answered) is counted as failed exports, said in one line, and returned: the
    /// process is about to end, and a count no one can scrape any more is no report.
    pub(crate) async fn finish<E: SpanExporter>(
        &self,
        exporter: &tokio::sync::Mutex<E>,
        deadline: Option<tokio::time::Instant>,
    ) -> u64 {
        self.flush(exporter, deadline).await;
        let queued = self.discard() as u64;
        // Taken, so the export that holds it does not count it again (an answer that
        // comes after this is not taken back).
        let unanswered = self.in_flight.swap(0, Ordering::AcqRel);
        problem::drop_count(Dropped::SpanExportFailed, unanswered);
        let left = queued + unanswered;
        if left > 0 {
            problem::report("span-flush", || {
                format!(
                    "traces: {left} spans were not exported before the program ended ({queued} queued, {unanswered} in an unanswered export)"
                )
            });
        }
        left
    }

    /// Exports everything waiting, batch by batch; with a `deadline`, no batch is
    /// started after it and none may run past it.
    pub(crate) async fn flush<E: SpanExporter>(
        &self,
        exporter: &tokio::sync::Mutex<E>,
        deadline: Option<tokio::time::Instant>,
    ) {
        let Some(exporter) = crate::until(deadline, exporter.lock()).await else {
            return;
        };
        loop {
            let now = tokio::time::Instant::now();
            let limit = match deadline {
                Some(d) if d <= now => return,
                Some(d) => (d - now).min(self.settings.export_timeout),
                None => self.settings.export_timeout,
            };
            let batch = self.take_batch();
            if batch.is_empty() {
                return;
            }
            // Counts the batch if this flush is dropped before its export is seen
            // answered (a caller's timeout around `Telemetry::flush`).
            let _unanswered = Unanswered(&self.in_flight);
            // A partial success noted by an export whose outcome was never seen (cut
            // off by its timeout) is not this batch's.
            let _ = super::take_partial();
            // A plugin that panics is turned off there; the spans go all the same.
            // Suppressed as the export is: a span a hook makes (a `tracing` span, with
            // the `logs` bridge) would come back to the hook at the next flush.
            if crate::plugin::any() {
                let _suppressed = Context::current().with_telemetry_suppressed().attach();
                for span in &batch {
                    crate::plugin::each(|p| p.on_span_end(span));
                }
            }
            // Suppressed: nothing the export does (a `tracing` span in its client, with
            // the `logs` bridge) may become a span that needs exporting.
            let export = exporter
                .export(batch)
                .with_context(Context::current().with_telemetry_suppressed());
            // A panic in the exporter (tonic's client panicked on a collector's
            // `grpc-status-details-bin` that is not base64, which the gRPC exporter
            // now takes out first) is a failed export; it
            // would otherwise end the export task for good. A collector may answer
            // so every time: the panic hook hears of the first only, and the rest
            // are said below, rate-limited.
            static SAID: AtomicBool = AtomicBool::new(false);
            let caught = coldstart_runtime::panics::caught_said_once(&SAID, export);
            let outcome = tokio::time::timeout(limit, caught).await;
            // Whoever takes the batch's count counts its loss: this export, or
            // `finish` if it gave up on it first.
            let n = self.in_flight.swap(0, Ordering::AcqRel);
            let why = match outcome {
                Ok(Ok(Ok(()))) => {
                    if let Some(partial) = super::take_partial() {
                        count_partial(partial, n);
                    }
                    continue;
                }
                Ok(Ok(Err(e))) => e.to_string(),
                Ok(Err(panic)) => {
                    format!("the exporter panicked: {}", problem::panic_text(&*panic))
                }
                Err(_) => format!("no answer within {limit:?}"),
            };
            problem::drop_count(Dropped::SpanExportFailed, n);
            problem::report("span-export", || {
                format!(
                    "traces: export failed ({why}); spans are dropped and counted in coldstart_telemetry_dropped_total"
                )
            });
        }
    }
}

/// The count of the batch in flight, counted as a failed export and said when it is
/// dropped with the count still there: the export was never seen answered.
struct Unanswered<'a>(&'a AtomicU64);

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        let n = self.0.swap(0, Ordering::AcqRel);
        if n > 0 {
            problem::drop_count(Dropped::SpanExportFailed, n);
            problem::report("span-export", || {
                format!(
                    "traces: a flush was cut off while its export waited for the collector; {n} spans are dropped and counted in coldstart_telemetry_dropped_total"
                )
            });
        }
    }
}

/// Counts the spans a collector rejected in a batch of `batch` spans it took, at
/// most the batch (a collector may say anything; a batch whose loss `finish` already
/// counted has 0 left), and says why once; a warning without a rejection is said too.
fn count_partial(partial: super::Partial, batch: u64) {
    let rejected = partial.rejected.min(batch);
    let why = match partial.message.as_str() {
        "" => "no reason given",
        message => message,
    };
    if rejected > 0 {
        problem::drop_count(Dropped::SpanRejected, rejected);
        problem::report("span-rejected", || {
            format!(
                "traces: the collector rejected {rejected} spans ({why}); they are counted in coldstart_telemetry_dropped_total"
            )
        });
    } else if partial.rejected == 0 {
        problem::report("span-warning", || {
            format!("traces: the collector took the spans with a warning: {why}")
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry_sdk::error::OTelSdkResult;

    use super::*;
    use crate::trace::otlp::NOTING;

    /// A span the batches below tell apart by its name, `n`.
    fn span(n: u8) -> SpanData {
        SpanData {
            name: Cow::Owned(n.to_string()),
            ..crate::bench::layer_span(u64::from(n))
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// A queue of at most `max_spans`, in batches of 2, exported only when flushed,
    /// each export cut at `timeout`, that was given the spans named `0..spans`.
    fn queue_of(max_spans: usize, timeout: Duration, spans: u8) -> Arc<Queue> {
        let queue = Queue::new(config::Queue {
            max_spans,
            batch: 2,
            delay: HOUR,
            export_timeout: timeout,
        });
        for n in 0..spans {
            queue.push(span(n));
        }
        queue
    }

    /// Records each batch it is given, by span name.
    #[derive(Debug, Default)]
    struct Batches(Mutex<Vec<Vec<String>>>);

    impl SpanExporter for Batches {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let names = batch.iter().map(|s| s.name.to_string()).collect();
            self.0.lock().unwrap().push(names);
            Ok(())
        }
    }

    /// Never answers.
    #[derive(Debug, Default)]
    struct Hangs;

    impl SpanExporter for Hangs {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            std::future::pending().await
        }
    }

    /// Panics on its first export (as tonic's client does on some collector answers),
    /// then records each batch as [`Batches`] does.
    #[derive(Debug, Default)]
    struct PanicsOnce {
        panicked: std::sync::atomic::AtomicBool,
        batches: Batches,
    }

    impl SpanExporter for PanicsOnce {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            tokio::task::yield_now().await;
            if !self.panicked.swap(true, Ordering::SeqCst) {
                panic!("Invalid status header, expected base64 encoded value");
            }
            self.batches.export(batch).await
        }
    }

    /// Takes each batch, answering as the collector's answer `answer` says (through
    /// the same note the OTLP/HTTP client makes).
    #[derive(Debug)]
    struct Answers(Vec<u8>);

    impl SpanExporter for Answers {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            super::super::otlp::note_answer(&self.0);
            Ok(())
        }
    }

    fn partial_success(rejected_spans: i64, message: &str) -> Vec<u8> {
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        use prost::Message as _;
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans,
                error_message: message.into(),
            }),
        }
        .encode_to_vec()
    }

    /// Spans a collector rejects in a partial success are counted as `rejected`, never
    /// more than the batch held, whatever it says; a negative count, a warning alone,
    /// an empty or unreadable answer, and a note no export of this queue made count
    /// none. The only test here that notes answers, so the counter moves for it alone
    /// (the note's other users hold [`NOTING`] too).
    #[tokio::test]
    async fn spans_a_collector_rejects_are_counted_up_to_the_batch() {
        let _serial = NOTING.lock().await;
        let rejected = || problem::dropped(Dropped::SpanRejected);
        let settings = config::Queue {
            max_spans: 10,
            batch: 2,
            delay: Duration::from_secs(3600),
            export_timeout: Duration::from_secs(5),
        };
        let send = |answer: Vec<u8>, spans: u8| async move {
            let queue = Queue::new(settings);
            for n in 0..spans {
                queue.push(span(n));
            }
            let exporter = Arc::new(tokio::sync::Mutex::new(Answers(answer)));
            let before = rejected();
            queue.flush(&exporter, None).await;
            rejected() - before
        };
        // Two batches (2 and 1 spans), each said to have lost 1.
        assert_eq!(send(partial_success(1, "too old"), 3).await, 2);
        // A count past the batch, as a broken collector might say.
        assert_eq!(send(partial_success(i64::MAX, "all\nof them"), 2).await, 2);
        for answer in [
            partial_success(-2, "odd"),
            partial_success(0, "a warning"),
            partial_success(0, ""),
            Vec::new(),
            b"{\"partialSuccess\":{}}".to_vec(),
        ] {
            let warned = problem::reports("span-warning");
            // A message with nothing rejected (a negative count is none) is a warning.
            let warning =
                [partial_success(-2, "odd"), partial_success(0, "a warning")].contains(&answer);
            assert_eq!(send(answer, 2).await, 0);
            // A warning without a rejection counts nothing and is said.
            assert_eq!(problem::reports("span-warning") > warned, warning);
        }
        // A note left by an export whose outcome was never seen is not the next one's.
        super::super::otlp::note_answer(&partial_success(5, "stale"));
        assert_eq!(send(Vec::new(), 2).await, 0);
    }

    /// `OTEL_BSP_SCHEDULE_DELAY=0`: each span goes out at once, short of a batch (the
    /// exporter waits for it, where it woke every millisecond on a timeout of 0).
    #[tokio::test]
    async fn with_no_delay_spans_go_at_once_and_the_exporter_idles_between() {
        let settings = config::Queue {
            max_spans: 10,
            batch: 5,
            delay: Duration::ZERO,
            export_timeout: Duration::from_secs(5),
        };
        let queue = Queue::new(settings);
        let exporter = Arc::new(tokio::sync::Mutex::new(Batches::default()));
        tokio::spawn(queue.clone().run(exporter.clone()));
        queue.push(span(1));
        let exported = async {
            while exporter.lock().await.0.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), exported)
            .await
            .expect("one span, short of a batch, exported without a delay");
        // Then it waits for the next span without running: this thread, the
        // runtime's only one, spends next to no CPU time over 300 ms (the loop on a
        // timeout of 0 spent all of it).
        let cpu = || {
            let mut t = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `t` is a valid timespec for the call to write.
            assert_eq!(
                unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) },
                0
            );
            Duration::new(t.tv_sec.unsigned_abs(), t.tv_nsec.unsigned_abs() as u32)
        };
        let before = cpu();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let spent = cpu() - before;
        assert!(
            spent < Duration::from_millis(100),
            "{spent:?} of CPU while idle"
        );
    }

    /// The collector's message in a report is one line, without characters that
    /// reorder text on a terminal.
    #[test]
    fn a_collectors_message_is_made_one_line() {
        assert_eq!(
            problem::one_line("  too old\nto\u{202e}keep\t ", 200),
            "too old tokeep"
        );
        assert_eq!(problem::one_line("abcdef", 3), "abc");
    }

    /// At shutdown, what the last export cannot send by its deadline is counted and
    /// returned, including a batch the scheduled export is still waiting on.
    /// Emptied, the queue holds no more than a batch's room: a burst's memory is given
    /// back (on a small board, thousands of spans' worth).
    #[tokio::test]
    async fn an_emptied_queue_gives_back_what_a_burst_took() {
        let _serial = NOTING.lock().await;
        let queue = queue_of(10, HOUR, 10);
        assert!(queue.spans.lock().unwrap().capacity() >= 10);
        let exporter = tokio::sync::Mutex::new(Batches::default());
        queue.flush(&exporter, None).await;
        assert_eq!(queue.len(), 0);
        assert!(queue.spans.lock().unwrap().capacity() <= 2);
        assert_eq!(exporter.lock().await.0.lock().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn the_last_export_counts_what_it_leaves_behind() {
        let _serial = NOTING.lock().await;
        let queue = queue_of(10, HOUR, 5);
        let exporter = Arc::new(tokio::sync::Mutex::new(Hangs));
        // The scheduled export takes a batch of 2 and waits for ever, holding the
        // exporter; 3 stay queued.
        let scheduled = tokio::spawn({
            let (queue, exporter) = (queue.clone(), exporter.clone());
            async move { queue.flush(&exporter, None).await }
        });
        while queue.len() != 3 {
            tokio::task::yield_now().await;
        }
        let failed = problem::dropped(Dropped::SpanExportFailed);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        assert_eq!(queue.finish(&exporter, Some(deadline)).await, 5);
        assert_eq!(problem::dropped(Dropped::SpanExportFailed) - failed, 5);
        assert_eq!(queue.len(), 0);
        scheduled.abort();
    }

    /// An exporter that panics fails that batch, counted and said, and the next batch
    /// is exported: the panic used to end the export task for good, its batch neither
    /// sent nor counted.
    #[tokio::test]
    async fn an_exporter_that_panics_fails_its_batch_and_the_next_goes_out() {
        let _serial = NOTING.lock().await;
        let queue = queue_of(10, Duration::from_secs(5), 3);
        let exporter = Arc::new(tokio::sync::Mutex::new(PanicsOnce::default()));
        let failed = problem::dropped(Dropped::SpanExportFailed);
        #[cfg(feature = "metrics")]
        let reported = problem::reports("span-export");
        queue.flush(&exporter, None).await;
        assert_eq!(problem::dropped(Dropped::SpanExportFailed) - failed, 2);
        #[cfg(feature = "metrics")]
        assert!(problem::reports("span-export") > reported, "said");
        let batches = exporter.lock().await.batches.0.lock().unwrap().clone();
        assert_eq!(batches, [vec!["2"]]);
        assert_eq!((queue.len(), queue.in_flight()), (0, 0));
    }

    /// A flush dropped while its export waits (a caller's timeout around
    /// `Telemetry::flush`) counts that batch: it was left neither sent nor counted,
    /// and the next batch's count overwrote it.
    #[tokio::test]
    async fn a_flush_dropped_mid_export_counts_its_batch() {
        let _serial = NOTING.lock().await;
        let queue = queue_of(10, HOUR, 3);
        let exporter = Arc::new(tokio::sync::Mutex::new(Hangs));
        let failed = problem::dropped(Dropped::SpanExportFailed);
        let said = problem::reports("span-export");
        let flush = tokio::spawn({
            let (queue, exporter) = (queue.clone(), exporter.clone());
            async move { queue.flush(&exporter, None).await }
        });
        while queue.in_flight() != 2 {
            tokio::task::yield_now().await;
        }
        flush.abort();
        assert!(flush.await.unwrap_err().is_cancelled());
        assert_eq!(problem::dropped(Dropped::SpanExportFailed) - failed, 2);
        assert!(problem::reports("span-export") > said, "said");
        assert_eq!((queue.len(), queue.in_flight()), (1, 0));
    }

    /// Before the exporter starts (that is, before the first response), the queue keeps
    /// at most its bound; the spans past it are dropped and counted as `queue_full`,
    /// never kept. Once the exporter runs, what was kept goes out, oldest first, in
    /// batches of the configured size. The only test here that fills a queue, so the
    /// process-wide counter moves for it alone.
    #[tokio::test]
    async fn before_the_exporter_starts_the_queue_keeps_its_bound_and_counts_the_rest() {
        let _serial = NOTING.lock().await;
        let before = problem::dropped(Dropped::SpanQueueFull);
        let queue = queue_of(3, Duration::from_secs(5), 5);
        assert_eq!(queue.len(), 3, "the bound holds before the exporter starts");
        assert_eq!(problem::dropped(Dropped::SpanQueueFull) - before, 2);

        let exporter = Arc::new(tokio::sync::Mutex::new(Batches::default()));
        queue.flush(&exporter, None).await;
        let batches = exporter.lock().await.0.lock().unwrap().clone();
        assert_eq!(batches, [vec!["0", "1"], vec!["2"]]);
        assert_eq!(queue.len(), 0);
        assert_eq!(problem::dropped(Dropped::SpanQueueFull) - before, 2);
    }
}

/*!
Retries of an OTLP export, over HTTP and gRPC alike: exponential backoff with jitter
on the runtime's clock (opentelemetry-otlp's policy: three retries, after 100, 200 and
400 ms, each plus up to 100 ms of jitter; the 1.6 s cap on one wait is never reached
with three), at least the delay the collector asked for, and the
whole export, retries included, within the OTLP timeout, as the specification asks.

Once the exporter's patience has run out ([`Patience::run_out`]), coldstart's own
backoff is no longer waited out: a retry waiting on it is made at once, and a failure
after that is not retried on coldstart's account. A wait the collector asked for is
still honoured. Patience runs out at the final flush, when the program is ending, and
at the first flush with a budget, which the Lambda integration makes before asking for
each next invocation: the process may be frozen after it, and the next invocation
would wait for the backoff. A collector that could not be reached a moment ago is
rarely there a few hundred milliseconds later. Without this the example took 850 ms
to exit with no collector listening, and on Lambda each next invocation waited about
800 ms.
*/

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Retries after the first attempt.
const RETRIES: u32 = 3;
/// The backoff before the first retry, doubled before each next one up to
/// [`MAX_DELAY`] (jitter included).
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
/// The longest wait a collector may ask for (`Retry-After`, `RetryInfo`), as
/// opentelemetry-otlp caps it.
pub(super) const MAX_ASKED_DELAY: Duration = Duration::from_secs(30);

/// How one attempt ended.
pub(super) enum Attempt {
    Done,
    Failed {
        /// Why, in one line: what the export fails with if this is the last attempt.
        why: String,
        /// Whether the specification lets it be tried again.
        retryable: bool,
        /// The delay the collector asked for, at most [`MAX_ASKED_DELAY`].
        asked: Option<Duration>,
    },
}

/// Whether the exporter still waits out its own backoff; one per exporter, shared
/// with the flushes that make it run out.
#[derive(Debug, Default)]
pub(crate) struct Patience {
    out: AtomicBool,
    wake: Notify,
}

impl Patience {
    /// From now on, a retry waiting on coldstart's backoff is made at once, and none
    /// follows a failure the collector asked no wait for.
    pub(crate) fn run_out(&self) {
        self.out.store(true, Ordering::Release);
        self.wake.notify_waiters();
    }

    fn is_out(&self) -> bool {
        self.out.load(Ordering::Acquire)
    }

    /// Returns once [`Patience::run_out`] has been called.
    async fn running_out(&self) {
        let woken = self.wake.notified();
        tokio::pin!(woken);
        // Registered before the check, so a `run_out` between the two is not missed.
        woken.as_mut().enable();
        if !self.is_out() {
            woken.await;
        }
    }
}

/// Runs `attempt` (given the time left) until it is done, fails for good, or the
/// retries or `timeout` run out; a retry that would start past the timeout is not
/// started. Once `patience` has run out, only a wait the collector asked for is waited
/// out (see the module's documentation). Returns the last failure's reason.
pub(super) async fn with_retries<A, F>(
    timeout: Duration,
    patience: &Patience,
    mut attempt: A,
) -> Result<(), String>
where
    A: FnMut(Duration) -> F,
    F: Future<Output = Attempt>,
{
    // A timeout past what the clock can hold (`Duration::MAX` given in code) is none.
    let deadline = Instant::now().checked_add(timeout);
    let (mut retry, mut delay) = (0, FIRST_DELAY);
    loop {
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        let Attempt::Failed {
            why,
            retryable,
            asked,
        } = attempt(left).await
        else {
            return Ok(());
        };
        let backoff = (delay + jitter()).min(MAX_DELAY);
        // Once patience has run out, only what the collector asked for is waited.
        let wait = match patience.is_out() {
            true => asked.unwrap_or_default(),
            false => asked.map_or(backoff, |asked| backoff.max(asked)),
        };
        if retry == RETRIES
            || !retryable
            || deadline.is_some_and(|d| Instant::now() + wait >= d)
            || (asked.is_none() && patience.is_out())
        {
            return Err(why);
        }
        retry += 1;
        // Once patience runs out, only the part of the wait the collector asked for.
        let asked_until = Instant::now() + asked.unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = async {
                patience.running_out().await;
                tokio::time::sleep_until(asked_until).await;
            } => {}
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Up to 100 ms, so that programs whose exports failed together do not retry together.
/// Random: each process's `RandomState` keys come from the OS, and each call takes new
/// ones (the clock, which this was, is the one thing those programs share).
fn jitter() -> Duration {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(0u8);
    Duration::from_nanos(random % 100_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn jitter_is_under_100_ms_and_differs_from_call_to_call() {
        let drawn: std::collections::BTreeSet<Duration> = (0..32).map(|_| jitter()).collect();
        assert!(drawn.len() > 16, "{drawn:?}");
        assert!(drawn.iter().all(|d| *d < Duration::from_millis(100)));
    }

    fn failing(tries: &AtomicU32, asked: Option<Duration>) -> impl Future<Output = Attempt> {
        tries.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Attempt::Failed {
            why: "refused".into(),
            retryable: true,
            asked,
        })
    }

    /// An export whose every attempt fails (asking for `asked`), counted in `tries`,
    /// run to its end: it ends with the last failure.
    async fn fails_to_the_end(
        timeout: Duration,
        patience: &Patience,
        asked: Option<Duration>,
        tries: &AtomicU32,
    ) {
        let result = with_retries(timeout, patience, |_| failing(tries, asked)).await;
        assert_eq!(result, Err("refused".into()));
    }

    /// While patience lasts, a collector that keeps failing is tried four times, over
    /// the backoff of 100, 200 and 400 ms (plus jitter).
    #[tokio::test(start_paused = true)]
    async fn a_failing_export_is_retried_three_times_with_backoff() {
        let (tries, patience, start) = (AtomicU32::new(0), Patience::default(), Instant::now());
        fails_to_the_end(Duration::from_secs(10), &patience, None, &tries).await;
        assert_eq!(tries.load(Ordering::SeqCst), 4);
        assert!(
            start.elapsed() >= Duration::from_millis(700),
            "{:?}",
            start.elapsed()
        );
    }

    /// A timeout past what the clock can hold, as a `Config` built in code may give
    /// (`Duration::MAX` for no limit), is no limit: the export is retried as usual
    /// (adding it to the clock panicked, and every batch was counted as failed).
    #[tokio::test(start_paused = true)]
    async fn a_timeout_the_clock_cannot_hold_is_no_limit() {
        let tries = AtomicU32::new(0);
        fails_to_the_end(Duration::MAX, &Patience::default(), None, &tries).await;
        assert_eq!(tries.load(Ordering::SeqCst), 4);
        let left = with_retries(Duration::MAX, &Patience::default(), |left| {
            std::future::ready(match left {
                Duration::MAX => Attempt::Done,
                _ => Attempt::Failed {
                    why: format!("given {left:?}"),
                    retryable: false,
                    asked: None,
                },
            })
        })
        .await;
        assert_eq!(left, Ok(()));
    }

    /// When patience runs out during a backoff, the retry is made at once and is the
    /// last; an export that begins after that makes one attempt.
    #[tokio::test(start_paused = true)]
    async fn once_patience_runs_out_a_backoff_is_cut_short_and_not_repeated() {
        let tries = Arc::new(AtomicU32::new(0));
        let patience = Arc::new(Patience::default());
        let start = Instant::now();
        let export = tokio::spawn({
            let (tries, patience) = (tries.clone(), patience.clone());
            async move { fails_to_the_end(Duration::from_secs(10), &patience, None, &tries).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            tries.load(Ordering::SeqCst),
            1,
            "waiting out the first backoff"
        );
        patience.run_out();
        export.await.unwrap();
        assert_eq!(tries.load(Ordering::SeqCst), 2);
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(50),
            "no backoff once out"
        );

        fails_to_the_end(Duration::from_secs(10), &patience, None, &tries).await;
        assert_eq!(tries.load(Ordering::SeqCst), 3);
        assert_eq!(start.elapsed(), Duration::from_millis(50));
    }

    /// A collector that asks for no wait (`Retry-After: 0`) is retried at once once
    /// patience has run out: the backoff on top of what it asked is coldstart's own.
    #[tokio::test(start_paused = true)]
    async fn without_patience_only_the_asked_part_of_a_wait_is_waited_out() {
        let (tries, patience, start) = (AtomicU32::new(0), Patience::default(), Instant::now());
        patience.run_out();
        fails_to_the_end(
            Duration::from_secs(10),
            &patience,
            Some(Duration::ZERO),
            &tries,
        )
        .await;
        assert_eq!(tries.load(Ordering::SeqCst), 4, "asked to retry: retried");
        assert_eq!(start.elapsed(), Duration::ZERO, "without the backoff");
    }

    /// With less time left than coldstart's own backoff, a collector that asks for no
    /// wait is still retried once patience has run out: only the asked wait counts
    /// against the time left (the backoff, which is not waited, made it give up).
    #[tokio::test(start_paused = true)]
    async fn without_patience_a_short_timeout_still_gets_the_asked_retries() {
        let (tries, patience) = (AtomicU32::new(0), Patience::default());
        patience.run_out();
        fails_to_the_end(
            Duration::from_millis(50),
            &patience,
            Some(Duration::ZERO),
            &tries,
        )
        .await;
        assert_eq!(tries.load(Ordering::SeqCst), 4);
    }

    /// A wait the collector asked for is still waited out once patience has run out.
    #[tokio::test(start_paused = true)]
    async fn a_wait_the_collector_asks_for_is_honoured_without_patience_too() {
        let (tries, patience, start) = (AtomicU32::new(0), Patience::default(), Instant::now());
        patience.run_out();
        let asked = Some(Duration::from_secs(2));
        fails_to_the_end(Duration::from_secs(3), &patience, asked, &tries).await;
        // The retry waits the 2 s asked; a third attempt would start past the 3 s.
        assert_eq!(tries.load(Ordering::SeqCst), 2);
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}

/*!
Retries of an OTLP export, over HTTP and gRPC alike: exponential backoff with jitter
on the runtime's clock (opentelemetry-otlp's recommended policy: three retries, from
100 ms doubling up to 1.6 s), at least the delay the collector asked for, and the
whole export, retries included, within the OTLP timeout, as the specification asks.
*/

use std::future::Future;
use std::time::Duration;

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

/// Runs `attempt` (given the time left) until it is done, fails for good, or the
/// retries or `timeout` run out; a retry that would start past the timeout is not
/// started. Returns the last failure's reason.
pub(super) async fn with_retries<A, F>(timeout: Duration, mut attempt: A) -> Result<(), String>
where
    A: FnMut(Duration) -> F,
    F: Future<Output = Attempt>,
{
    let deadline = Instant::now() + timeout;
    let (mut retry, mut delay) = (0, FIRST_DELAY);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Attempt::Failed {
            why,
            retryable,
            asked,
        } = attempt(left).await
        else {
            return Ok(());
        };
        let backoff = (delay + jitter()).min(MAX_DELAY);
        let wait = asked.map_or(backoff, |asked| backoff.max(asked));
        if retry == RETRIES || !retryable || Instant::now() + wait >= deadline {
            return Err(why);
        }
        retry += 1;
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Up to 100 ms, so that programs started together do not retry together.
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_nanos(u64::from(nanos % 100_000_000))
}

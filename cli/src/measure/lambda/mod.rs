//! Start-up of Lambda functions against a Runtime API emulator (`cargo lambda watch
//! --only-lambda-apis`), as a caller sees a cold start: an invocation is queued at
//! the emulator, then the function is released to `exec`, and the clock stops when
//! the caller has the answer. The function reaches the emulator through a recording
//! proxy that notes when its first `/next` request arrives: its init duration, as
//! Lambda defines it. Then a few warm invocations are timed, caller to caller.
//!
//! The proxy adds one loopback hop to every Runtime API request of every target
//! alike. It also holds back the `/next` a function sends after the run's last
//! invocation (it forwards one per invocation of the run): the emulator would
//! otherwise keep that request of a killed process waiting and hand it the next
//! run's invocation, which would be lost. Every child
//! is killed and reaped before the next run starts.

use std::fs::File;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{
    Stats, Target, exited_before_answering, launch, read_response_while, status_of, stderr_file,
    still_running, tail,
};
use crate::cgroup::TempCgroup;

mod emulator;

pub use emulator::{Emulator, EmulatorProcess, start_emulator};

/// One cold start and its warm invocations.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaSample {
    /// From release to `exec` until the function's first `/next` request.
    pub init: Duration,
    /// From release to `exec` until the queued invocation's answer was read.
    pub answer: Duration,
    /// Resident set size when the answer was read.
    pub rss_bytes: u64,
    /// Threads when the answer was read.
    pub threads: u32,
    /// Each warm invocation, from sending it to reading its answer.
    pub warm: Vec<Duration>,
}

/// Queues an invocation at `emulator`, starts `target` against it (inside `cgroup`
/// if given), measures the cold start, then `warm` more invocations. The function is
/// killed once measured.
///
/// # Errors
///
/// The function cannot be started, exits before answering (its stderr tail is in the
/// message), or an answer is not HTTP 200 within [`RUN_TIMEOUT`](super::RUN_TIMEOUT).
pub fn run_lambda_once(
    target: &Target,
    emulator: &Emulator,
    cgroup: Option<&TempCgroup>,
    warm: usize,
) -> anyhow::Result<LambdaSample> {
    let run = Run {
        target,
        emulator,
        cgroup,
        warm,
        payload: COLD_EVENT,
    };
    run.measure(&|| true).map(|(sample, _, _)| sample)
}

/// The event of a measured cold start.
const COLD_EVENT: &str = r#"{"cold":true}"#;

/// Invokes `target` once with `payload` as [`run_lambda_once`] does, then keeps it
/// running until `until` returns (it may wait); `None` when `until` returned true,
/// else the last lines of the function's stderr, for the error to show.
///
/// # Errors
///
/// As [`run_lambda_once`].
pub fn run_lambda_until(
    target: &Target,
    emulator: &Emulator,
    payload: &str,
    until: impl Fn() -> bool,
) -> anyhow::Result<Option<String>> {
    let run = Run {
        target,
        emulator,
        cgroup: None,
        warm: 0,
        payload,
    };
    run.measure(&until)
        .map(|(_, held, tail)| (!held).then_some(tail))
}

/// One run's settings.
struct Run<'a> {
    target: &'a Target,
    emulator: &'a Emulator,
    cgroup: Option<&'a TempCgroup>,
    warm: usize,
    payload: &'a str,
}

impl Run<'_> {
    /// [`measure`] with the function's stderr in a temporary file; with what `until`
    /// returned, and the stderr's last lines when it returned false.
    fn measure(&self, until: &dyn Fn() -> bool) -> anyhow::Result<(LambdaSample, bool, String)> {
        let (stderr, stderr_path) =
            stderr_file(&format!("lambda-{}.stderr", self.emulator.proxy.port()))?;
        let outcome = measure(self, until, stderr, &stderr_path).map(|(sample, held)| {
            let said = if held {
                String::new()
            } else {
                tail(&stderr_path)
            };
            (sample, held, said)
        });
        let _ = std::fs::remove_file(&stderr_path);
        outcome
    }
}

fn measure(
    run: &Run<'_>,
    until: &dyn Fn() -> bool,
    stderr: File,
    stderr_path: &std::path::Path,
) -> anyhow::Result<(LambdaSample, bool)> {
    let Run {
        target,
        emulator,
        cgroup,
        warm,
        payload,
    } = *run;
    emulator.reset(1 + warm);
    let mut caller = emulator.queue(payload)?;
    // Let the emulator take the invocation in before the function exists.
    std::thread::sleep(Duration::from_millis(20));
    let env = [
        ("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api()),
        ("AWS_LAMBDA_FUNCTION_NAME", target.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
    ];
    let (mut child, start) = launch(target, cgroup, &env, stderr)?;
    let answer = read_response_while(&mut caller, &mut || still_running(&mut child, target));
    let elapsed = start.elapsed();
    let status = status_of(child.child.id());
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            if let Some(status) = child.exited()? {
                return Err(exited_before_answering(target, status, stderr_path));
            }
            return Err(e.context(format!(
                "{} sent no answer; its stderr ends with:\n{}",
                target.name,
                tail(stderr_path)
            )));
        }
    };
    check(target, &answer)?;
    // An init error reported to the emulator comes back as an answer too: what it
    // says, and the function's stderr, tell that case.
    let said = || {
        format!(
            "the answer was {}; its stderr ends with:\n{}",
            body_of(&answer),
            tail(stderr_path)
        )
    };
    let (rss_bytes, threads) = status.map_err(|e| {
        // A process that is exiting has lost its memory figures before it can be
        // waited for: give it a moment to be one that has exited.
        let exited = (0..20).any(|_| {
            let done = matches!(child.exited(), Ok(Some(_)));
            if !done {
                std::thread::sleep(Duration::from_millis(10));
            }
            done
        });
        if exited {
            anyhow::anyhow!(
                "{} exited right after its answer, before its RSS and threads could be read (a function goes on to ask for its next invocation); {}",
                target.name,
                said()
            )
        } else {
            e
        }
    })?;
    let Some(first_next) = emulator.first_next() else {
        bail!(
            "{} answered without a `/next` request through the proxy; {}",
            target.name,
            said()
        );
    };
    let mut warm_times = Vec::with_capacity(warm);
    for i in 0..warm {
        let sent = Instant::now();
        let mut caller = emulator.queue(&format!(r#"{{"warm":{i}}}"#))?;
        let answer = read_response_while(&mut caller, &mut || still_running(&mut child, target))
            .with_context(|| format!("warm invocation {i} of {}", target.name))?;
        warm_times.push(sent.elapsed());
        check(target, &answer)?;
    }
    let held = until();
    drop(child);
    let sample = LambdaSample {
        init: first_next.saturating_duration_since(start),
        answer: elapsed,
        rss_bytes,
        threads,
        warm: warm_times,
    };
    Ok((sample, held))
}

/// The body of an HTTP answer, quoted and cut to 300 bytes.
fn body_of(answer: &[u8]) -> String {
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer, |at| &answer[at + 4..]);
    format!(
        "{:?}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    )
}

fn check(target: &Target, answer: &[u8]) -> anyhow::Result<()> {
    if !answer.starts_with(b"HTTP/1.1 200") {
        bail!(
            "{} answered {:?}",
            target.name,
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    }
    Ok(())
}

/// All runs of one Lambda target.
#[derive(Debug, Clone)]
pub struct LambdaSeries {
    /// The target's name.
    pub name: String,
    /// Its samples, in run order.
    pub samples: Vec<LambdaSample>,
}

impl LambdaSeries {
    /// Init durations in ms.
    pub fn init_ms(&self) -> Stats {
        Stats::of(self.samples.iter().map(|s| ms(s.init)).collect())
    }

    /// Exec to answer in ms.
    pub fn answer_ms(&self) -> Stats {
        Stats::of(self.samples.iter().map(|s| ms(s.answer)).collect())
    }

    /// Warm invocations in ms, all runs together; `None` when none were made
    /// (`--warm 0`).
    pub fn warm_ms(&self) -> Option<Stats> {
        let warm: Vec<f64> = self
            .samples
            .iter()
            .flat_map(|s| s.warm.iter().map(|d| ms(*d)))
            .collect();
        (!warm.is_empty()).then(|| Stats::of(warm))
    }

    /// RSS at the answer in MiB.
    pub fn rss_mib(&self) -> Stats {
        Stats::of(
            self.samples
                .iter()
                .map(|s| s.rss_bytes as f64 / f64::from(1u32 << 20))
                .collect(),
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs every target `runs` times, alternating as [`alternate`](super::alternate)
/// does, calling `progress(done, total)` after each run.
///
/// # Errors
///
/// The first run that fails, naming the target.
pub fn alternate_lambda(
    targets: &[Target],
    emulator: &Emulator,
    runs: usize,
    warm: usize,
    cgroup: Option<&TempCgroup>,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<Vec<LambdaSeries>> {
    let samples = super::series::rotate(targets, runs, cgroup, progress, |t| {
        run_lambda_once(t, emulator, cgroup, warm)
    })?;
    Ok(samples
        .into_iter()
        .map(|(name, samples)| LambdaSeries { name, samples })
        .collect())
}

/// A table of Lambda series, each median also as a ratio to `baseline`'s.
pub fn lambda_table(series: &[LambdaSeries], baseline: &str) -> String {
    let base = series.iter().find(|s| s.name == baseline);
    let width = series
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let ratio = |v: f64, b: Option<f64>| match b {
        Some(b) if b > 0.0 => format!("{:.2}x", v / b),
        _ => "-".to_owned(),
    };
    let mut out = format!(
        "{:width$}  {:>8} {:>6}  {:>8} {:>7} {:>7} {:>6}  {:>8} {:>6}  {:>7}\n",
        "target", "init", "ratio", "answer", "min", "max", "ratio", "warm", "ratio", "RSS MiB"
    );
    for s in series {
        let (init, answer, warm, rss) = (s.init_ms(), s.answer_ms(), s.warm_ms(), s.rss_mib());
        out.push_str(&format!(
            "{:width$}  {:>6.3}ms {:>6}  {:>6.3}ms {:>7.3} {:>7.3} {:>6}  {:>8} {:>6}  {:>7.2}\n",
            s.name,
            init.median,
            ratio(init.median, base.map(|b| b.init_ms().median)),
            answer.median,
            answer.min,
            answer.max,
            ratio(answer.median, base.map(|b| b.answer_ms().median)),
            warm.map_or("-".to_owned(), |w| format!("{:.3}ms", w.median)),
            warm.map_or("-".to_owned(), |w| ratio(
                w.median,
                base.and_then(|b| b.warm_ms()).map(|b| b.median)
            )),
            rss.median,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, warm: &[u64]) -> LambdaSeries {
        let sample = LambdaSample {
            init: Duration::from_millis(2),
            answer: Duration::from_millis(3),
            rss_bytes: 4 << 20,
            threads: 1,
            warm: warm.iter().map(|&ms| Duration::from_millis(ms)).collect(),
        };
        LambdaSeries {
            name: name.to_owned(),
            samples: vec![sample],
        }
    }

    #[test]
    fn without_warm_invocations_there_is_no_warm_figure() {
        let none = [series("a", &[]), series("b", &[])];
        assert!(none[0].warm_ms().is_none());
        let table = lambda_table(&none, "a");
        let row = table.lines().nth(1).unwrap();
        assert!(row.contains("   -      -  "), "{table}");
        assert!(!row.contains("0.000ms"), "{table}");

        let some = [series("a", &[1]), series("b", &[2, 2])];
        assert_eq!(some[1].warm_ms().unwrap().median, 2.0);
        let table = lambda_table(&some, "a");
        assert!(
            table.lines().nth(2).unwrap().contains(" 2.000ms  2.00x"),
            "{table}"
        );
    }
}

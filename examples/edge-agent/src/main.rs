//! A long-running agent for a small board, on `#[coldstart::main]`: it takes no
//! inbound requests. Every `EDGE_INTERVAL` (default `1s`) it samples a sensor into
//! metrics (`edge_sensor_celsius`): the file `EDGE_SENSOR` (which must exist), else
//! the board's thermal zone (`EDGE_THERMAL_ZONE`, default
//! `/sys/class/thermal/thermal_zone0/temp`; both in millidegrees), or, where there is no
//! thermal zone at start, a simulated reading (`edge_sensor_simulated` 1); a zone that
//! cannot be looked at counts as there. A reading of a sensor that exists and fails (an
//! I/O error, text that is no number, more than 4096 bytes, no answer within the
//! interval: it is read on a thread of its own) is skipped: counted
//! in `edge_sensor_read_errors_total` and said, the last good reading kept, never
//! replaced by a simulated one. The metrics are served on `/metrics`
//! (`COLDSTART_METRICS_ADDR`, default
//! `127.0.0.1:9464`) or pushes to a Pushgateway (`COLDSTART_METRICS_PUSH_URL`; it
//! then serves `/metrics` too only when given an address).
//!
//! With no request to answer, nothing marks a first response: the fallback timer
//! (`COLDSTART_FIRST_RESPONSE_FALLBACK`, default 10 s) does. Until it fires the agent
//! samples with only the runtime the plan built; then the deferred work runs (here an
//! upload spool opened after start-up) and the metrics listener starts, holding every
//! sample taken before it. `EDGE_CYCLES=n` stops after n samples (for tests). A run
//! that pushes makes its last push when it ends, also when stopped by SIGTERM or
//! SIGINT before the fallback timer.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coldstart_bootstrap::plan::settings::parse_duration;
// A line on stderr in one write; one that cannot be written (a log shipper gone,
// `| head`) is lost and the agent samples on, where `eprintln!` would panic.
use coldstart_bootstrap::say;
use tokio::sync::oneshot;

/// Stands in for opening an on-disk spool for readings that could not be uploaded
/// (I/O-bound, 30 ms). Nothing the first cycles do needs it.
#[coldstart::init(deferred)]
async fn open_spool() {
    tokio::time::sleep(Duration::from_millis(30)).await;
    say!("edge-agent: spool opened");
}

/// Where readings come from unless `EDGE_SENSOR` says otherwise (`EDGE_THERMAL_ZONE`
/// names another zone, or a path that is not there for the simulation).
const THERMAL_ZONE: &str = "/sys/class/thermal/thermal_zone0/temp";

/// The most a reading may take, in bytes. A thermal zone's file holds a few
/// (`45000\n`); one that goes on (`/dev/zero`, a serial device that keeps writing)
/// would otherwise grow the read thread's buffer until the board runs out of memory.
const MAX_READING: u64 = 4096;

/// The sensor, chosen once at start: a board with one never gets simulated readings.
enum Sensor {
    /// A file that holds millidegrees Celsius.
    File(PathBuf),
    /// No sensor file: a slow wave around 45 degrees, so a dashboard has something to
    /// draw.
    Simulated,
}

impl Sensor {
    /// The sensor file given (it must be there), else the thermal zone `zone`, else
    /// the simulation. A zone that cannot be looked at (permission denied, an I/O
    /// error) is taken as there: its readings then fail, counted and said, where a
    /// simulation would pass for a board's real readings.
    fn choose(given: Option<PathBuf>, zone: PathBuf) -> Sensor {
        if let Some(path) = given {
            if let Err(e) = std::fs::metadata(&path) {
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "which does not exist".to_owned()
                } else {
                    format!("which cannot be looked at ({e})")
                };
                say!(
                    "edge-agent: EDGE_SENSOR names {}, {why}; set it to the sensor's file, or leave it unset",
                    path.display()
                );
                std::process::exit(78)
            }
            return Sensor::File(path);
        }
        match zone.try_exists() {
            Ok(false) => Sensor::Simulated,
            Ok(true) | Err(_) => Sensor::File(zone),
        }
    }

    /// One reading in degrees Celsius, or why there is none.
    fn read(&self, cycle: u64) -> Result<f64, String> {
        let path = match self {
            Sensor::File(path) => path,
            Sensor::Simulated => return Ok(45.0 + 5.0 * (cycle as f64 / 10.0).sin()),
        };
        // One byte past the bound tells a reading that is too long from one that fits.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_READING + 1).read_to_end(&mut bytes))
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_READING {
            return Err(format!(
                "the reading is longer than {MAX_READING} bytes, more than a sensor file holds"
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| "the reading is not UTF-8 text")?;
        // `nan` and `inf` parse as numbers and are no reading.
        let millidegrees: f64 = text
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("`{}` is no number", text.trim().escape_debug()))?;
        Ok(millidegrees / 1000.0)
    }
}

/// Reads the sensor off the runtime, waiting at most a cycle's interval: a sensor
/// file can block (a 1-Wire thermometer takes 750 ms a reading, a FIFO with no
/// writer forever), and on the minimal plan's one thread a read on the runtime would
/// stop everything else (the fallback timer, `/metrics`, pushes, signals). A read
/// still out at the next cycle is waited for again, never doubled.
struct Reader {
    sensor: Arc<Sensor>,
    out: Option<oneshot::Receiver<Result<f64, String>>>,
}

impl Reader {
    async fn read(&mut self, cycle: u64, within: Duration) -> Result<f64, String> {
        if matches!(*self.sensor, Sensor::Simulated) {
            return self.sensor.read(cycle);
        }
        let mut out = match self.out.take() {
            Some(out) => out,
            None => {
                let (tx, rx) = oneshot::channel();
                let sensor = Arc::clone(&self.sensor);
                // A thread of its own, not tokio's blocking pool: a read that never
                // returns must not hold the end of `main`, which waits for that pool.
                // No thread to be had (a task limit reached) is a skipped reading, not
                // a read here: a sensor that blocks would stop everything else.
                std::thread::Builder::new()
                    .name("edge-sensor".into())
                    .spawn(move || {
                        let _ = tx.send(sensor.read(cycle));
                    })
                    .map_err(|e| format!("no thread to read it on: {e}"))?;
                rx
            }
        };
        match tokio::time::timeout(within, &mut out).await {
            Ok(Ok(reading)) => reading,
            Ok(Err(_)) => Err("the read ended without a result".to_owned()),
            Err(_) => {
                self.out = Some(out);
                Err(format!("no answer within {within:?}"))
            }
        }
    }
}

/// The setting `name`, parsed by `parse`, or `None` when unset or blank (as every
/// coldstart setting is); exits 78 naming it and what it accepts on a bad value.
fn setting<T>(name: &str, accepts: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    let given = std::env::var_os(name)?;
    let text = given.to_string_lossy();
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if given.to_str().is_none() {
        say!(
            "edge-agent: set {name} to {accepts}, in UTF-8: got `{}`, which is not",
            text.escape_debug()
        );
        std::process::exit(78)
    }
    let parsed = parse(text);
    if parsed.is_none() {
        say!(
            "edge-agent: set {name} to {accepts}, got `{}`",
            text.escape_debug()
        );
        std::process::exit(78)
    }
    parsed
}

#[coldstart::main]
async fn main() {
    let started = Instant::now();
    let interval = setting(
        "EDGE_INTERVAL",
        "a duration such as 1s or 250ms (above 0, up to 1h)",
        |t| parse_duration(t).filter(|d| !d.is_zero()),
    )
    .unwrap_or(Duration::from_secs(1));
    let cycles: Option<u64> = setting("EDGE_CYCLES", "a whole number", |t| t.parse().ok());
    let path = |t: &str| Some(PathBuf::from(t));
    let sensor = Sensor::choose(
        setting("EDGE_SENSOR", "the path of a file", path),
        setting("EDGE_THERMAL_ZONE", "the path of a file", path)
            .unwrap_or_else(|| PathBuf::from(THERMAL_ZONE)),
    );
    let source = match &sensor {
        Sensor::File(path) => path.display().to_string(),
        Sensor::Simulated => "simulated".to_owned(),
    };
    if let Some(plan) = coldstart::plan() {
        say!(
            "edge-agent: planned for {:.2} CPU and {} MiB: {} ({}), {} with {} worker thread(s), \
             blocking pool up to {}, {} KiB thread stacks",
            plan.cores,
            plan.memory_bytes >> 20,
            plan.strategy.value,
            plan.strategy.reason,
            plan.flavor.value,
            plan.worker_threads.value,
            plan.max_blocking_threads.value,
            plan.thread_stack_size.value >> 10
        );
    }
    coldstart::after_first_request(async move {
        let by = match coldstart::trigger() {
            Some(coldstart::Trigger::Fallback) => "the fallback timer",
            _ => "a first response",
        };
        say!(
            "edge-agent: deferred work started by {by} after {} ms",
            started.elapsed().as_millis()
        );
    });

    metrics::describe_gauge!(
        "edge_sensor_celsius",
        "The last reading of the sensor, in degrees Celsius."
    );
    metrics::describe_gauge!(
        "edge_sensor_simulated",
        "1 when there is no sensor and the readings are simulated, else 0."
    );
    metrics::describe_counter!("edge_samples_total", "Readings taken since start.");
    metrics::describe_counter!(
        "edge_sensor_read_errors_total",
        "Readings of the sensor that failed and were skipped."
    );
    // Both counters exist from the start, at 0: a series that appears only with its
    // first increment hides that increment from `increase()` and `rate()`, and an
    // alert on a sensor that never answers would never fire.
    metrics::counter!("edge_samples_total").increment(0);
    metrics::counter!("edge_sensor_read_errors_total").increment(0);
    let simulated = matches!(sensor, Sensor::Simulated);
    let mut reader = Reader {
        sensor: Arc::new(sensor),
        out: None,
    };
    metrics::gauge!("edge_sensor_simulated").set(f64::from(u8::from(simulated)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cycle = 0;
    while cycles.is_none_or(|n| cycle < n) {
        ticker.tick().await;
        cycle += 1;
        match reader.read(cycle, interval).await {
            Ok(celsius) => {
                metrics::gauge!("edge_sensor_celsius").set(celsius);
                metrics::counter!("edge_samples_total").increment(1);
                say!("edge-agent: cycle {cycle}: {celsius:.1} C from {source}");
            }
            Err(why) => {
                metrics::counter!("edge_sensor_read_errors_total").increment(1);
                say!("edge-agent: cycle {cycle}: {source} could not be read ({why}); skipped");
            }
        }
    }
}

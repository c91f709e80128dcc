/*!
Pushgateway mode, for jobs that end before anything could scrape them: every
interval, and once more at shutdown, the whole exposition is sent with `PUT
<url>/metrics/job/<job>` (the Pushgateway protocol; PUT replaces the group).

A push that fails (gateway down, refusing, slow, answering an error) is counted in
`coldstart_telemetry_dropped_total{reason="push_failed"}` and reported once a minute
at most; it never delays anything else.
*/

use std::fmt::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, header};
use hyper::body::Bytes;

use crate::client::Client;
use crate::config::Push;
use crate::problem::{self, Dropped};

/// Longest a push may take, connection included.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest time between pushes: what `COLDSTART_METRICS_PUSH_INTERVAL` accepts.
const MAX_PUSH_INTERVAL: Duration = Duration::from_secs(3600);

/// The pushes' settings and their turn, from the final push's registration on.
static PUSHES: OnceLock<(Push, Turn)> = OnceLock::new();

/// Set once [`start`] has started the periodic pushes.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Pushes every interval on a task (the final push registered first, if it was not).
/// Once: a later call, from a flush that came first (see [`push_within`]), starts no
/// second task.
pub(crate) fn start(push: Push) {
    let (push, turn) = registered(push);
    if STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    coldstart_runtime::task::spawn(async move {
        // The settings refuse less than 100 ms and more than an hour; a `Config` built
        // in code may hold 0, on which tokio's interval panics, or `Duration::MAX`, past
        // which its next tick cannot be counted.
        let interval = push
            .interval
            .clamp(crate::config::MIN_PUSH_INTERVAL, MAX_PUSH_INTERVAL);
        let mut every = tokio::time::interval(interval);
        // A push slower than the interval is followed by the next one an interval
        // later, not at once: back to back, one would nearly always be in flight.
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let mut pushes = turn.lock().await;
            match pushes.at_tick() {
                Tick::Stop => return,
                Tick::Skip => continue,
                Tick::Push => {
                    push_now(push).await;
                }
            }
        }
    });
}

/// Pushes take turns, and none follows the final one: a periodic push rendered
/// before the final one and landing after it would leave older values in the
/// gateway (PUT replaces the group).
type Turn = std::sync::Arc<tokio::sync::Mutex<Pushes>>;

#[derive(Debug, Default)]
struct Pushes {
    /// The final push is made: no other follows.
    final_made: bool,
    /// A flush pushed since the interval's last tick, and the gateway took it.
    flushed: bool,
}

/// What the interval's tick does.
#[derive(Debug, PartialEq, Eq)]
enum Tick {
    Push,
    /// A flush pushed since the last tick: this one would send the same counts
    /// again. On Lambda it is the tick overdue at a thaw, which would push beside
    /// the invocation that thawed the process.
    Skip,
    /// The final push is made.
    Stop,
}

impl Pushes {
    fn at_tick(&mut self) -> Tick {
        if self.final_made {
            Tick::Stop
        } else if std::mem::take(&mut self.flushed) {
            Tick::Skip
        } else {
            Tick::Push
        }
    }
}

/// Registers the final push, made when the program ends (at a signal, or at the end
/// of `main`), once: later calls keep the first's settings. A shutdown hook makes
/// the runtime take SIGTERM and SIGINT; this is called as the body starts, so a job
/// stopped before its exporters start still pushes what it counted.
pub(crate) fn at_shutdown(push: Push) {
    registered(push);
}

/// [`at_shutdown`], returning the pushes' settings and turn.
fn registered(push: Push) -> &'static (Push, Turn) {
    let mut first = false;
    let pushes = PUSHES.get_or_init(|| {
        first = true;
        (push, Turn::default())
    });
    let (push, turn) = pushes;
    if first {
        // A periodic push in flight holds the turn for up to its own timeout; the
        // final push then has a whole one too, unless `final_within` is shorter (on
        // Lambda).
        coldstart_runtime::on_shutdown("metrics push", push.final_within, move || async move {
            let mut pushes = turn.lock().await;
            pushes.final_made = true;
            push_now(push).await;
        });
    }
    pushes
}

/// Pushes now, within `budget`, in turn with the periodic pushes: what a flush does
/// for metrics (Lambda's, after each invocation's response and before the next one
/// is asked for: the interval's timer does not run while the process is frozen, so
/// an invocation's counts waited for the next thaw). Nothing before the first
/// response, or after the final push. A push that ends within the budget stands for
/// the interval's next tick, which would send the same counts; one cut off by the
/// budget is counted as failed; a wait for the turn cut off is said, not counted
/// (the counts are totals: the next push carries them).
///
/// The first response done, a flush starts the pushes if the exporters' start has not
/// yet: both are woken by the same mark, and the flush's task can run first (on a
/// multi-thread runtime, tokio's slot for the task spawned last), which skipped the
/// push of the cold-start invocation's counts.
pub(crate) async fn push_within(budget: Duration) {
    let Some((push, turn)) = PUSHES.get() else {
        return;
    };
    if !STARTED.load(Ordering::Acquire) {
        if coldstart_runtime::lifecycle::trigger().is_none() {
            return;
        }
        // As the exporters' start does: the HTTP families' help text first, so that
        // this push and the later ones agree (the gateway logs a family whose help
        // changes between pushes of a group).
        super::describe();
        start(push.clone());
    }
    let deadline = tokio::time::Instant::now().checked_add(budget);
    let Some(mut pushes) = crate::until(deadline, turn.lock()).await else {
        // The push in flight was rendered before what was counted since: said, not
        // counted as dropped (the counts are totals, which the next push carries).
        problem::report("metrics-push", || {
            format!(
                "metrics: a flush's push to {} was not made: a push still in flight held it past the flush's budget of {budget:?}; what was counted since that push was rendered goes with the next one",
                push.shown_url()
            )
        });
        return;
    };
    if pushes.final_made {
        return;
    }
    if let Some(taken) = crate::until(deadline, push_now(push)).await {
        // One the gateway did not take is not made again by the flush, nor stood
        // for: the next tick tries.
        pushes.flushed = taken;
    } else {
        problem::drop_count(Dropped::PushFailed, 1);
        problem::report("metrics-push", || {
            format!(
                "metrics: push to {} cut off by the flush's budget of {budget:?}",
                push.shown_url()
            )
        });
    }
}

/// One push: whether the gateway took it. A failure is counted and reported.
async fn push_now(push: &Push) -> bool {
    let grouping: Vec<String> = std::iter::once("job".to_owned())
        .chain(push.grouping.iter().map(|(k, _)| k.clone()))
        .collect();
    let Err(why) = send(push, super::render_served(grouping).await).await else {
        return true;
    };
    problem::drop_count(Dropped::PushFailed, 1);
    problem::report("metrics-push", || {
        format!("metrics: push to {} failed: {why}", push.shown_url())
    });
    false
}

async fn send(push: &Push, body: String) -> Result<(), String> {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    let client = CLIENT.get_or_init(|| Client::plain(PUSH_TIMEOUT));
    let mut uri = http::Uri::builder().path_and_query(path(push));
    if let (Some(scheme), Some(authority)) = (push.url.scheme(), push.url.authority()) {
        uri = uri.scheme(scheme.clone()).authority(authority.clone());
    }
    let mut request = Request::builder()
        .method(Method::PUT)
        .uri(uri.build().map_err(|e| e.to_string())?)
        .header(header::CONTENT_TYPE, super::CONTENT_TYPE);
    if let Some(credentials) = &push.credentials {
        request = request.header(header::AUTHORIZATION, credentials.basic());
    }
    let request = request.body(Bytes::from(body)).map_err(|e| e.to_string())?;
    let response = client.send(request).await?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // A refusal says why in its body ("pushed metrics are invalid or inconsistent
    // with existing metrics: ..."); a 5xx is the gateway's own trouble.
    let why = crate::problem::one_line(&String::from_utf8_lossy(response.body()), 200);
    Err(match (status.is_client_error(), why.is_empty()) {
        (true, false) => format!("the gateway refused the push with {status}: {why}"),
        (true, true) => format!("the gateway refused the push with {status}"),
        (false, _) => format!("the gateway answered {status}"),
    })
}

/// `<base path>/metrics/job/<job>` and then `/<label>/<value>` for each grouping
/// label, a value in the gateway's base64 form when it is not a plain name; the URL's
/// query after it, as given (a proxy in front of the gateway may need one).
fn path(push: &Push) -> String {
    let mut path = push.url.path().trim_end_matches('/').to_owned();
    path.push_str("/metrics");
    let labels = std::iter::once(("job", push.job.as_str()))
        .chain(push.grouping.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (label, value) in labels {
        // `.` and `..` alone are path steps, which the gateway's router cleans away
        // and answers with a redirect: they go in base64 too.
        let plain = !value.is_empty()
            && value.bytes().any(|b| b != b'.')
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if plain {
            let _ = write!(path, "/{label}/{value}");
        } else if value.is_empty() {
            // The protocol's form of an empty value.
            let _ = write!(path, "/{label}@base64/=");
        } else {
            let _ = write!(
                path,
                "/{label}@base64/{}",
                crate::base64::url_safe(value.as_bytes())
            );
        }
    }
    if let Some(query) = push.url.query() {
        path.push('?');
        path.push_str(query);
    }
    path
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The tick after a flush's push the gateway took is left out (it would send the
    /// same counts; on Lambda it is overdue at each thaw); after one it did not take,
    /// the tick pushes; after the final push, the ticks stop.
    #[test]
    fn a_tick_after_a_flush_the_gateway_took_is_left_out() {
        let mut pushes = Pushes::default();
        assert_eq!(pushes.at_tick(), Tick::Push);
        pushes.flushed = true;
        assert_eq!(pushes.at_tick(), Tick::Skip);
        assert_eq!(pushes.at_tick(), Tick::Push);
        // A flush push refused or failed leaves `flushed` false (`push_within`).
        pushes.flushed = false;
        assert_eq!(pushes.at_tick(), Tick::Push);
        pushes.flushed = true;
        pushes.final_made = true;
        assert_eq!(pushes.at_tick(), Tick::Stop);
    }

    /// A push the gateway refused is said to be not taken: a flush's push that was
    /// refused does not stand for the next tick.
    #[tokio::test]
    async fn a_refused_push_is_not_taken() {
        // It counts a drop, which other tests here read.
        let _turn = COUNTER_TURN.lock().await;
        let (url, _) = gateway(Some(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
        ));
        assert!(!push_now(&push(&url, "t")).await);
        let (url, _) = gateway(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
        assert!(push_now(&push(&url, "t")).await);
    }

    fn push(url: &str, job: &str) -> Push {
        Push {
            url: url.parse().unwrap(),
            credentials: None,
            job: job.into(),
            interval: Duration::from_secs(1),
            grouping: Vec::new(),
            final_within: crate::config::FINAL_PUSH_WITHIN,
        }
    }

    #[test]
    fn paths_follow_the_gateway_protocol() {
        assert_eq!(
            path(&push("http://gw:9091", "batch_1")),
            "/metrics/job/batch_1"
        );
        assert_eq!(
            path(&push("http://gw:9091/prefix/", "a")),
            "/prefix/metrics/job/a"
        );
        assert_eq!(
            path(&push("http://gw:9091", "a/b")),
            "/metrics/job@base64/YS9i"
        );
        // Dots alone would be path steps, cleaned away by the gateway's router.
        assert_eq!(
            path(&push("http://gw:9091", "..")),
            "/metrics/job@base64/Li4="
        );
        assert_eq!(
            path(&push("http://gw:9091", ".")),
            "/metrics/job@base64/Lg=="
        );
        assert_eq!(path(&push("http://gw:9091", "v1.2")), "/metrics/job/v1.2");
        // A query goes with the push: it was dropped without a word.
        assert_eq!(
            path(&push("http://gw:9091/base/?token=x&a=b", "a")),
            "/base/metrics/job/a?token=x&a=b"
        );
        // And the messages do not show it, nor does `Debug`.
        let with_token = push("http://gw:9091/base/?token=s3cret", "a");
        assert_eq!(with_token.shown_url(), "http://gw:9091/base/?<not shown>");
        assert!(!format!("{with_token:?}").contains("s3cret"));
        let mut grouped = push("http://gw:9091", "batch");
        grouped.grouping = vec![
            ("instance".into(), "host-1".into()),
            ("path".into(), "/var/x".into()),
            ("empty".into(), String::new()),
        ];
        assert_eq!(
            path(&grouped),
            "/metrics/job/batch/instance/host-1/path@base64/L3Zhci94/empty@base64/="
        );
    }

    /// The drop counter is process-wide: tests that read it take turns.
    static COUNTER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test]
    async fn a_gateway_that_is_down_is_counted_not_returned() {
        let _turn = COUNTER_TURN.lock().await;
        let before = problem::dropped(Dropped::PushFailed);
        // Port 9 on loopback: nothing listens there.
        push_now(&push("http://127.0.0.1:9", "t")).await;
        assert_eq!(problem::dropped(Dropped::PushFailed), before + 1);
    }

    /// A gateway that reads each request's head, hands it over, and answers with
    /// `answer`, or never answers when it is `None`. Returns its URL and the heads.
    fn gateway(answer: Option<&'static [u8]>) -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (heads, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                match answer {
                    Some(answer) => {
                        let _ = stream.write_all(answer);
                    }
                    // Hold the connection open, unanswered, for the test's life.
                    None => std::mem::forget(stream),
                }
            }
        });
        (url, received)
    }

    /// The credentials in the URL go to the gateway as basic authentication and
    /// nowhere else: not in the failure line (the gateway here answers 401).
    #[tokio::test]
    async fn credentials_are_sent_as_basic_authentication_and_never_shown() {
        let env = coldstart_bootstrap::Env::fixed([(
            "COLDSTART_METRICS_PUSH_URL",
            "http://ci%40example:s3cret-pw@127.0.0.1:9/gw",
        )]);
        let (config, errors) = crate::Config::from(&env);
        assert!(errors.is_empty(), "{errors:?}");
        let mut push = config.push.unwrap();
        assert_eq!(push.url.to_string(), "http://127.0.0.1:9/gw");
        assert!(!format!("{push:?}").contains("s3cret"), "{push:?}");

        let (url, heads) = gateway(Some(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n",
        ));
        push.url = format!("{url}/gw").parse().unwrap();
        let outcome = send(&push, String::new()).await;
        let head = heads
            .recv_timeout(Duration::from_secs(10))
            .expect("the gateway got no request");
        assert!(
            head.ends_with("\r\n\r\n"),
            "the request ended early: {head}"
        );
        // base64("ci@example:s3cret-pw")
        assert!(
            head.to_ascii_lowercase()
                .contains("authorization: basic y2lazxhhbxbsztpzm2nyzxqtchc="),
            "{head}"
        );
        let why = outcome.expect_err("401 is a failure");
        assert!(why.contains("401") && !why.contains("s3cret"), "{why}");
    }

    #[tokio::test]
    async fn a_gateway_that_answers_errors_is_counted_not_returned() {
        let _turn = COUNTER_TURN.lock().await;
        let (url, _heads) = gateway(Some(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
        ));
        let before = problem::dropped(Dropped::PushFailed);
        push_now(&push(&url, "t")).await;
        assert_eq!(problem::dropped(Dropped::PushFailed), before + 1);
    }

    /// A refusal's line gives the gateway's reason from its answer, made one line; a
    /// 5xx's, the status alone.
    #[tokio::test]
    async fn a_refusal_says_the_gateways_reason() {
        let reason = "pushed metrics are invalid or inconsistent with existing metrics:\nlabel name \"__x\" is reserved";
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-length: {}\r\n\r\n{reason}",
            reason.len()
        );
        let (url, _heads) = gateway(Some(Box::leak(answer.into_bytes().into_boxed_slice())));
        let refused = send(&push(&url, "t"), String::new()).await.unwrap_err();
        assert_eq!(
            refused,
            "the gateway refused the push with 400 Bad Request: pushed metrics are invalid or inconsistent with existing metrics: label name \"__x\" is reserved"
        );
        let (url, _heads) = gateway(Some(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy",
        ));
        let failed = send(&push(&url, "t"), String::new()).await.unwrap_err();
        assert_eq!(failed, "the gateway answered 503 Service Unavailable");
    }

    /// On a paused clock the push's timeout passes without real waiting: the runtime
    /// is idle while the gateway holds the request, so tokio moves its clock on.
    #[tokio::test(start_paused = true)]
    async fn a_gateway_that_never_answers_is_cut_off_and_counted() {
        let _turn = COUNTER_TURN.lock().await;
        let (url, _heads) = gateway(None);
        let before = problem::dropped(Dropped::PushFailed);
        let start = tokio::time::Instant::now();
        push_now(&push(&url, "t")).await;
        assert_eq!(problem::dropped(Dropped::PushFailed), before + 1);
        assert!(start.elapsed() >= PUSH_TIMEOUT, "cut off by the timeout");
    }
}

/*!
Pushgateway mode, for jobs that end before anything could scrape them: every
interval, and once more at shutdown, the whole exposition is sent with `PUT
<url>/metrics/job/<job>` (the Pushgateway protocol; PUT replaces the group).

A push that fails (gateway down, refusing, slow, answering an error) is counted in
`coldstart_telemetry_dropped_total{reason="push_failed"}` and reported once a minute
at most; it never delays anything else.
*/

use std::time::Duration;

use http::{Method, Request, header};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::Push;
use crate::problem::{self, Dropped};

/// Longest a push may take, connection included.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Pushes every interval on a task, and registers the final push at shutdown.
pub(crate) fn start(push: Push) {
    let last = push.clone();
    coldstart_runtime::on_shutdown("metrics push", PUSH_TIMEOUT, move || async move {
        push_now(&last).await;
    });
    tokio::spawn(async move {
        let mut every = tokio::time::interval(push.interval);
        loop {
            every.tick().await;
            push_now(&push).await;
        }
    });
}

/// One push; failures are counted and reported, never returned.
pub(crate) async fn push_now(push: &Push) {
    let outcome = match tokio::time::timeout(PUSH_TIMEOUT, send(push, super::render())).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer within {PUSH_TIMEOUT:?}")),
    };
    if let Err(why) = outcome {
        problem::drop_count(Dropped::PushFailed, 1);
        problem::report("metrics-push", || {
            format!("metrics: push to {} failed: {why}", push.url)
        });
    }
}

async fn send(push: &Push, body: String) -> Result<(), String> {
    let host = push.url.host().unwrap_or("127.0.0.1");
    let port = push.url.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(Method::PUT)
        .uri(path(push))
        .header(header::HOST, format!("{host}:{port}"))
        .header(header::CONTENT_TYPE, super::CONTENT_TYPE)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the gateway answered {}", response.status()))
    }
}

/// `<base path>/metrics/job/<job>`, the job in the gateway's base64 form when it is
/// not a plain name.
fn path(push: &Push) -> String {
    let base = push.url.path().trim_end_matches('/');
    let plain = !push.job.is_empty()
        && push
            .job
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if plain {
        format!("{base}/metrics/job/{}", push.job)
    } else {
        format!(
            "{base}/metrics/job@base64/{}",
            base64_url(push.job.as_bytes())
        )
    }
}

/// URL-safe base64 with padding, as the Pushgateway accepts in a path.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn push(url: &str, job: &str) -> Push {
        Push {
            url: url.parse().unwrap(),
            job: job.into(),
            interval: Duration::from_secs(1),
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
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (input, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_url(input.as_bytes()), encoded);
        }
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8=");
    }

    #[tokio::test]
    async fn a_gateway_that_is_down_is_counted_not_returned() {
        let before = problem::dropped(Dropped::PushFailed);
        // Port 9 on loopback: nothing listens there.
        push_now(&push("http://127.0.0.1:9", "t")).await;
        assert_eq!(problem::dropped(Dropped::PushFailed), before + 1);
    }
}

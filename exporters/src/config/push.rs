//! Pushing metrics to a Prometheus Pushgateway (`COLDSTART_METRICS_PUSH_*`): the URL
//! and its credentials, the job, the interval and the grouping labels.

use std::fmt;
use std::time::Duration;

use super::reader::percent_decode;

/// Pushing to a Prometheus Pushgateway, for jobs too short-lived to be scraped.
#[derive(Clone, PartialEq)]
pub struct Push {
    /// The Pushgateway's base URL (`COLDSTART_METRICS_PUSH_URL`), without the user
    /// info, with any query (sent with every push); logs, `doctor` and `Debug` show
    /// it without the query too ([`Push::shown_url`]).
    pub url: http::Uri,
    /// `user:password` from the URL's user info, sent as HTTP basic authentication.
    pub credentials: Option<Credentials>,
    /// The `job` grouping label (`COLDSTART_METRICS_PUSH_JOB`, default the service
    /// name).
    pub job: String,
    /// Time between pushes (`COLDSTART_METRICS_PUSH_INTERVAL`, default 10 s); one
    /// more push happens at shutdown.
    pub interval: Duration,
    /// Grouping labels after `job` (`COLDSTART_METRICS_PUSH_GROUPING`, default none):
    /// instances that push the same job need one of their own (`instance=...`), or
    /// each push replaces the others' metrics.
    pub grouping: Vec<(String, String)>,
    /// How long the push at shutdown may take, waiting first for a periodic push in
    /// flight: [`FINAL_PUSH_WITHIN`], each push taking up to 5 s. coldstart's Lambda
    /// integration cuts it to what Lambda allows after SIGTERM.
    pub final_within: Duration,
}

impl Push {
    /// The URL as messages show it: no user info (split off already), no query (a
    /// token may be there): `http://gw:9091/?<not shown>`.
    pub fn shown_url(&self) -> String {
        coldstart_bootstrap::config::shown("COLDSTART_METRICS_PUSH_URL", &self.url.to_string())
    }
}

impl fmt::Debug for Push {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("url", &self.shown_url())
            .field("credentials", &self.credentials)
            .field("job", &self.job)
            .field("interval", &self.interval)
            .field("grouping", &self.grouping)
            .field("final_within", &self.final_within)
            .finish()
    }
}

/// The shortest [`Push::interval`] `COLDSTART_METRICS_PUSH_INTERVAL` accepts.
pub const MIN_PUSH_INTERVAL: Duration = Duration::from_millis(100);
/// The default [`Push::final_within`]: a periodic push in flight, then the final one,
/// each within its 5 s timeout.
pub const FINAL_PUSH_WITHIN: Duration = Duration::from_secs(10);

/// Basic-authentication credentials (`user:password`, percent-decoded). Never shown:
/// `Debug` prints `Credentials(<not shown>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials(pub(super) String);

impl Credentials {
    /// The `Authorization` header value.
    #[cfg(feature = "metrics")]
    pub(crate) fn basic(&self) -> String {
        format!("Basic {}", crate::base64::standard(self.0.as_bytes()))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<not shown>)")
    }
}

/// A Pushgateway URL: `http://`, a host, and optional `user:password@` split off.
pub(super) fn push_url(raw: &str) -> Option<(http::Uri, Option<Credentials>)> {
    let uri = raw.parse::<http::Uri>().ok()?;
    if uri.scheme_str() != Some("http") || !host_and_port_ok(&uri) {
        return None;
    }
    let authority = uri.authority()?.as_str();
    let Some((user_info, host_port)) = authority.rsplit_once('@') else {
        return Some((uri, None));
    };
    let bare = http::Uri::builder()
        .scheme("http")
        .authority(host_port)
        .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .ok()?;
    Some((bare, Some(Credentials(percent_decode(user_info)?))))
}

/// Whether `uri` names a host (`http://:9091` parses with an empty one, and every
/// request to it failed) and, if it has a port, a port ([`port_ok`]).
pub(crate) fn host_and_port_ok(uri: &http::Uri) -> bool {
    uri.host().is_some_and(|h| !h.is_empty()) && port_ok(uri)
}

/// Whether `uri`'s port, if it has one, is a port: `http::Uri` takes `:70000` and
/// `:4318x`, and a client would then go to port 80 or 443 without a word. (An empty
/// one is the scheme's default, as RFC 3986 has it.)
pub(crate) fn port_ok(uri: &http::Uri) -> bool {
    // `port()` says nothing of a port it cannot read: the authority's text does.
    let Some(authority) = uri.authority() else {
        return true;
    };
    let host_port = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, h)| h);
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => host_port.find(':').map_or("", |i| &host_port[i..]),
    };
    match after_host.strip_prefix(':') {
        None => after_host.is_empty(),
        Some(port) => port.is_empty() || port.parse::<u16>().is_ok_and(|n| n > 0),
    }
}

/// Whether `label` may name a Pushgateway grouping label: a Prometheus label name,
/// not `job` (the job comes first), not a reserved `__` name, and not `le` or
/// `quantile`: the gateway sets grouping labels on every series, and a histogram's
/// buckets would carry `le` twice, which makes Prometheus refuse the gateway's
/// whole scrape.
pub(super) fn grouping_label(label: &str) -> bool {
    let mut chars = label.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(label, "job" | "le" | "quantile")
        && !label.starts_with("__")
}

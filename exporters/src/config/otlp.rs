//! Where and how spans are exported over OTLP: the protocol, compression, the
//! endpoint and the headers (`OTEL_EXPORTER_OTLP_*`).

use super::push::host_and_port_ok;
use super::reader::{Reader, THE_OTHER_HEADERS_ARE_SENT, parse_pairs, percent_decode_bytes};

/// How spans travel to the collector (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf`, the default: port 4318, path `/v1/traces`.
    HttpProtobuf,
    /// `grpc` (the `grpc` feature): port 4317.
    Grpc,
}

impl Protocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }
}

/// How export requests are compressed (`OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, else
/// `OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `none`, the default.
    None,
    /// `gzip` (the `gzip` feature).
    Gzip,
}

impl Compression {
    /// The name `OTEL_EXPORTER_OTLP_COMPRESSION` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        }
    }
}

pub(super) fn read_protocol(r: &mut Reader<'_>) -> Protocol {
    let grpc = r.build.grpc;
    let accepts = if grpc {
        "`http/protobuf` or `grpc`"
    } else {
        "`http/protobuf` (`grpc` needs coldstart's `grpc` feature)"
    };
    r.read_either(
        [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ],
        accepts,
        "OTEL_EXPORTER_OTLP_PROTOCOL is used instead",
        |s| {
            [Protocol::HttpProtobuf, Protocol::Grpc]
                .into_iter()
                .find(|p| p.name().eq_ignore_ascii_case(s) && (grpc || *p != Protocol::Grpc))
        },
    )
    .unwrap_or(Protocol::HttpProtobuf)
}

/// The specification's names, in any case (as opentelemetry-otlp takes them).
pub(super) fn read_compression(r: &mut Reader<'_>) -> Compression {
    let gzip = r.build.gzip;
    let accepts = if gzip {
        "`gzip` or `none`"
    } else {
        "`none` (`gzip` needs coldstart's `gzip` feature)"
    };
    r.read_either(
        [
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ],
        accepts,
        "OTEL_EXPORTER_OTLP_COMPRESSION is used instead",
        |s| {
            [Compression::None, Compression::Gzip]
                .into_iter()
                .find(|c| c.name().eq_ignore_ascii_case(s) && (gzip || *c != Compression::Gzip))
        },
    )
    .unwrap_or(Compression::None)
}

const URL: &str = "an http:// or https:// URL such as `http://collector:4318`, without a `#fragment` \
     or user info (credentials go in OTEL_EXPORTER_OTLP_HEADERS, as `authorization=Basic ...`)";

/// The traces endpoint from the most specific variable that is set and valid.
pub(super) fn read_endpoint(r: &mut Reader<'_>, protocol: Protocol) -> Option<String> {
    let url = |s: &str| {
        s.parse::<http::Uri>()
            .ok()
            .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && host_and_port_ok(u))
            // The signal's path goes after the base's: a fragment would hide it.
            .filter(|_| !s.contains('#'))
            // The exporter sends no credentials from the URL: a collector that wants
            // them would refuse every batch with a bare 401.
            .filter(|u| u.authority().is_none_or(|a| !a.as_str().contains('@')))
            .map(|_| s.to_owned())
    };
    const GENERAL: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    let (endpoint, from) = r.read_either_from(
        ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", GENERAL],
        URL,
        "OTEL_EXPORTER_OTLP_ENDPOINT is used instead",
        url,
    )?;
    Some(if from == GENERAL {
        with_traces_path(endpoint, protocol)
    } else {
        endpoint
    })
}

/// The general endpoint with the signal's path (`/v1/traces`) for OTLP/HTTP, before
/// any query the base carries.
fn with_traces_path(base: String, protocol: Protocol) -> String {
    if protocol == Protocol::Grpc {
        return base;
    }
    let (path, query) = match base.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (base.as_str(), None),
    };
    let mut endpoint = format!("{}/v1/traces", path.trim_end_matches('/'));
    if let Some(query) = query {
        endpoint.push('?');
        endpoint.push_str(query);
    }
    endpoint
}

/// Whether an OTLP endpoint is an `https://` URL.
pub(crate) fn https(url: &str) -> bool {
    url.trim_start()
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// What a headers value accepts, in words.
const HEADERS_ACCEPT: &str = "comma-separated `name=value` pairs, values percent-encoded";

/// Headers that frame or encode the request's body, which are the exporter's to set:
/// one given in the setting is left out (a `content-length` in it failed every
/// export, the client writing the given length or the collector reading it; a
/// `content-encoding: gzip` labelled a body `OTEL_EXPORTER_OTLP_COMPRESSION` left
/// plain, and the collector refused every batch).
const FRAMING: [&str; 3] = ["content-length", "transfer-encoding", "content-encoding"];

/// What a headers value accepts, said where it names a [`FRAMING`] header.
const UNFRAMED_ACCEPT: &str = "comma-separated `name=value` pairs other than \
    `content-length`, `transfer-encoding` and `content-encoding` (the exporter frames \
    the body, and OTEL_EXPORTER_OTLP_COMPRESSION sets its encoding)";

/// Export headers: `OTEL_EXPORTER_OTLP_TRACES_HEADERS` when it is set and readable,
/// else `OTEL_EXPORTER_OTLP_HEADERS`, each whole, as the other OpenTelemetry SDKs
/// read them (the signal's own setting replaces the general one, it is not merged
/// into it). A value that cannot be read entirely sends nothing of itself; one that
/// names a [`FRAMING`] header sends the others, and that one is said.
pub(super) fn read_headers(r: &mut Reader<'_>) -> Vec<(String, String)> {
    const OWN: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
    let keys: &[&str] = if r.own_first(OWN, "OTEL_EXPORTER_OTLP_HEADERS") {
        &[OWN, "OTEL_EXPORTER_OTLP_HEADERS"]
    } else {
        &["OTEL_EXPORTER_OTLP_HEADERS"]
    };
    for &key in keys {
        let Some((raw, layer)) = r.layered(key) else {
            continue;
        };
        let valid = parse_pairs(&raw).filter(|pairs| {
            pairs.iter().all(|(k, v)| {
                http::HeaderName::try_from(k.as_str()).is_ok()
                    && http::HeaderValue::try_from(v.as_str()).is_ok()
            })
        });
        let general = "OTEL_EXPORTER_OTLP_HEADERS";
        let instead = if key != general && r.layered(general).is_some() {
            "no headers from it are sent; OTEL_EXPORTER_OTLP_HEADERS is read instead"
        } else {
            "no headers from it are sent"
        };
        match valid {
            Some(mut pairs) => {
                let framing = |name: &str| FRAMING.iter().any(|f| name.eq_ignore_ascii_case(f));
                let mut left_out: Vec<String> = Vec::new();
                for (name, _) in pairs.iter().filter(|(name, _)| framing(name)) {
                    if !left_out.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                        left_out.push(name.clone());
                    }
                }
                if left_out.is_empty() {
                    return pairs;
                }
                pairs.retain(|(name, _)| !framing(name));
                let mut names: Vec<String> = left_out.iter().map(|n| format!("`{n}`")).collect();
                let last = names.pop().unwrap_or_default();
                let names = if names.is_empty() {
                    last
                } else {
                    format!("{} and {last}", names.join(", "))
                };
                let why = Some(format!("it names {names}"));
                if pairs.is_empty() {
                    // Nothing else given: refused whole, as a value that cannot be read.
                    r.refuse(key, raw, layer, UNFRAMED_ACCEPT, instead).why = why;
                    continue;
                }
                r.refuse(key, raw, layer, UNFRAMED_ACCEPT, THE_OTHER_HEADERS_ARE_SENT)
                    .why = why;
                return pairs;
            }
            None => {
                let why = headers_problem(&raw);
                r.refuse(key, raw, layer, HEADERS_ACCEPT, instead).why = why;
            }
        }
    }
    Vec::new()
}

/// What is wrong with a headers value, without its values (they are credentials):
/// the first pair that cannot be sent, by its place and, where it is one, its name.
fn headers_problem(raw: &str) -> Option<String> {
    let pairs = raw.split(',').map(str::trim).filter(|p| !p.is_empty());
    for (n, pair) in pairs.enumerate().map(|(i, p)| (i + 1, p)) {
        let Some((name, value)) = pair.split_once('=') else {
            return Some(format!("pair {n} has no `=`"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Some(format!("pair {n} has no name"));
        }
        // A name that is none may be a credential written in the wrong place.
        if http::HeaderName::try_from(name).is_err() {
            return Some(format!(
                "pair {n}'s name is not a header name (letters, digits, `-` and `_`)"
            ));
        }
        let problem = match percent_decode_bytes(value.trim()).map(String::from_utf8) {
            None => "a `%` not followed by two hex digits",
            Some(Err(_)) => "its value decodes to bytes that are not UTF-8",
            Some(Ok(value)) if http::HeaderValue::try_from(value.as_str()).is_err() => {
                "its value holds a character no header value may (a control character)"
            }
            Some(Ok(_)) => continue,
        };
        return Some(format!("pair {n}, `{name}`: {problem}"));
    }
    None
}

/*!
W3C trace context and baggage in and out, through the propagators chosen by
`OTEL_PROPAGATORS` (default `tracecontext,baggage`).

The HTTP layer extracts incoming context itself. These helpers are for the other
directions and carriers: outgoing HTTP requests ([`inject_headers`]), gRPC metadata
([`inject_metadata`], [`extract_metadata`]; the `grpc` feature), and the string maps
that message-queue clients carry as headers ([`inject_map`], [`extract_map`]).
*/

use std::borrow::Cow;
use std::collections::HashMap;

use std::cell::OnceCell;
use std::sync::OnceLock;

use opentelemetry::Context;
use opentelemetry::baggage::{BaggageExt, KeyValueMetadata};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// Writes `cx` (its span and baggage) into outgoing HTTP headers. A span without a
/// trace state sends no `tracestate` (W3C Trace Context asks vendors to avoid sending
/// an empty one). What the propagators write that was left from another request is
/// taken out first: headers used again for a call with no span or no baggage do not
/// carry the one before's trace or baggage.
///
/// ```
/// use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
/// use opentelemetry_sdk::propagation::TraceContextPropagator;
/// opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
/// let span = SpanContext::new(
///     TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
///     SpanId::from_hex("00f067aa0ba902b7").unwrap(),
///     TraceFlags::SAMPLED, true, TraceState::default());
/// let cx = opentelemetry::Context::new().with_remote_span_context(span);
/// let mut headers = http::HeaderMap::new();
/// coldstart_exporters::trace::propagation::inject_headers(&cx, &mut headers);
/// assert_eq!(headers["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// ```
pub fn inject_headers(cx: &Context, headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|p| {
        for field in p.fields() {
            headers.remove(field);
        }
        p.inject_context(cx, &mut HeaderInjector(headers));
    });
    if headers.get("tracestate").is_some_and(|v| v.is_empty()) {
        headers.remove("tracestate");
    }
}

/// Reads the context carried by incoming HTTP headers, as the W3C specifications
/// read them: `tracestate` and `baggage` sent more than once are one list, and a
/// `traceparent` that is sent twice or is not exactly of its form is none (a new
/// trace starts).
pub fn extract_headers(headers: &http::HeaderMap) -> Context {
    let extractor = HeaderExtractor::new(headers);
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&extractor))
}

/// [`extract_headers`] where `headers` carry one of the installed propagator's fields;
/// else the current context, without the propagators' parsing (most requests carry
/// none). The fields are the installed propagator's, so one a program installed in
/// place of coldstart's (B3, X-Ray) is read too.
pub(crate) fn extract_carried(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| {
        if p.fields().any(|field| headers.contains_key(field)) {
            p.extract(&HeaderExtractor::new(headers))
        } else {
            Context::current()
        }
    })
}

/// Writes `cx` into a message's string headers (Kafka, NATS, SQS attributes...), as
/// [`inject_headers`] does: no empty `tracestate` (SQS refuses an empty attribute),
/// and nothing left from another message.
pub fn inject_map(cx: &Context, map: &mut HashMap<String, String>) {
    opentelemetry::global::get_text_map_propagator(|p| {
        // Message headers are often kept as they came (`Traceparent`): any case.
        map.retain(|name, _| !p.fields().any(|field| field.eq_ignore_ascii_case(name)));
        p.inject_context(cx, map);
    });
    if map.get("tracestate").is_some_and(String::is_empty) {
        map.remove("tracestate");
    }
}

/// Reads the context carried by a message's string headers, as HTTP headers are
/// read ([`extract_headers`]): names in any case (Go's clients send `Traceparent`),
/// and a name given twice in two cases as a header sent twice (a `traceparent` is
/// then none). A pair that could not be an HTTP header (a name with a blank, a value
/// with a control character) is passed over: no field of the propagators is one.
pub fn extract_map(map: &HashMap<String, String>) -> Context {
    let mut headers = http::HeaderMap::with_capacity(map.len());
    for (name, value) in map {
        // `HeaderName` takes a name in any case and keeps it in lower case.
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name.as_str()),
            http::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    extract_headers(&headers)
}

/// Writes `cx` into the metadata of an outgoing gRPC request (tonic).
///
/// ```
/// # use opentelemetry_sdk::propagation::TraceContextPropagator;
/// # opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
/// use coldstart_exporters::trace::propagation::{extract_headers, extract_metadata, inject_metadata};
/// use opentelemetry::trace::TraceContextExt;
/// let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let mut incoming = http::HeaderMap::new();
/// incoming.insert("traceparent", traceparent.parse().unwrap());
/// let mut request = tonic::Request::new(());
/// inject_metadata(&extract_headers(&incoming), request.metadata_mut());
/// assert_eq!(request.metadata().get("traceparent").unwrap().to_str().unwrap(), traceparent);
/// let cx = extract_metadata(request.metadata());
/// assert_eq!(cx.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
#[cfg(feature = "grpc")]
pub fn inject_metadata(cx: &Context, metadata: &mut tonic::metadata::MetadataMap) {
    // Metadata is a header map underneath: the HTTP carriers serve both.
    inject_headers(cx, metadata.as_mut());
}

/// Reads the context carried by an incoming gRPC request's metadata (tonic).
#[cfg(feature = "grpc")]
pub fn extract_metadata(metadata: &tonic::metadata::MetadataMap) -> Context {
    extract_headers(metadata.as_ref())
}

/// W3C Trace Context: the SDK's propagator, given a `traceparent` and a `tracestate`
/// only when they have the forms the specification gives (it parsed the ids as
/// numbers and took `00-1-1-01`, and kept duplicate or surplus `tracestate` members).
#[derive(Debug, Default)]
pub(crate) struct TraceContext(TraceContextPropagator);

impl TextMapPropagator for TraceContext {
    /// As the SDK writes it, an empty `tracestate` for a span without one included:
    /// another library's injector may reuse a carrier, where that empty value is what
    /// replaces the state of the call before. coldstart's helpers take it out.
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.0.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let carrier = WellFormed {
            carrier: extractor,
            tracestate: OnceCell::new(),
        };
        self.0.extract_with_context(cx, &carrier)
    }

    fn fields(&self) -> FieldIter<'_> {
        self.0.fields()
    }
}

/// A carrier whose `traceparent` and `tracestate` are there only when well formed,
/// the latter with only the members the SDK takes.
struct WellFormed<'a> {
    carrier: &'a dyn Extractor,
    /// Worked out when the SDK asks for it: only after a good `traceparent`.
    tracestate: OnceCell<Option<Cow<'a, str>>>,
}

impl Extractor for WellFormed<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self
                .carrier
                .get(key)
                .filter(|value| well_formed_traceparent(value.trim())),
            "tracestate" => self
                .tracestate
                .get_or_init(|| {
                    let value = self.carrier.get(key)?;
                    well_formed_tracestate(value).then(|| members_the_sdk_takes(value))
                })
                .as_deref(),
            _ => self.carrier.get(key),
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.carrier.keys()
    }
}

/// A well-formed `tracestate` without what the SDK's `TraceState` takes otherwise than
/// W3C Trace Context: a key whose system id (after `@`) has 14 characters, the most
/// the grammar allows, which the SDK refuses, dropping the whole list for it (the
/// members left out are said in one report a request, rate-limited); and empty
/// members, which the SDK counts towards its 32, dropping the last members of a list
/// of 32 that has some.
fn members_the_sdk_takes(value: &str) -> Cow<'_, str> {
    let taken = |member: &&str| {
        let key = member.split_once('=').map_or(*member, |(key, _)| key);
        key.split_once('@')
            .is_none_or(|(_, system)| system.len() < 14)
    };
    let members = value.split(',').map(|m| m.trim_matches([' ', '\t']));
    if members.clone().all(|m| !m.is_empty() && taken(&m)) {
        return Cow::Borrowed(value);
    }
    // One report for the request, however many members it names: a caller controls
    // how many, and each report takes the problems' lock and calls the plugins.
    let mut left_out = members
        .clone()
        .filter(|m| !taken(m))
        .map(|m| m.split_once('=').map_or(m, |(key, _)| key));
    if let Some(key) = left_out.next() {
        let more = match left_out.count() {
            0 => String::new(),
            n => format!(" (and {n} more)"),
        };
        crate::problem::report("tracestate-member", || {
            format!(
                "traces: the tracestate member `{key}`{more} is not passed on: its system id has 14 characters, which W3C Trace Context allows and the OpenTelemetry SDK refuses"
            )
        });
    }
    let kept: Vec<&str> = members.filter(|m| !m.is_empty() && taken(m)).collect();
    Cow::Owned(kept.join(","))
}

/// Whether `value` is a `tracestate` list as W3C Trace Context gives it: at most 32
/// members, each `key=value` with the grammar's keys (`vendor` or `tenant@system`) and
/// values, no key twice. Anything else is dropped whole, as the specification's test
/// suite expects.
fn well_formed_tracestate(value: &str) -> bool {
    let mut keys: Vec<&str> = Vec::new();
    for member in value.split(',').map(|m| m.trim_matches([' ', '\t'])) {
        if member.is_empty() {
            continue;
        }
        let Some((key, value)) = member.split_once('=') else {
            return false;
        };
        // Past 32 members at once: a client's list of thousands of members would
        // otherwise cost a comparison with every key before it, on the request path.
        if keys.len() == 32
            || !tracestate_key(key)
            || !tracestate_value(value)
            || keys.contains(&key)
        {
            return false;
        }
        keys.push(key);
    }
    true
}

fn tracestate_key(key: &str) -> bool {
    let rest = |s: &str| {
        s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
        })
    };
    match key.split_once('@') {
        None => {
            (1..=256).contains(&key.len())
                && key.starts_with(|c: char| c.is_ascii_lowercase())
                && rest(key)
        }
        Some((tenant, system)) => {
            (1..=241).contains(&tenant.len())
                && tenant.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && rest(tenant)
                && (1..=14).contains(&system.len())
                && system.starts_with(|c: char| c.is_ascii_lowercase())
                && rest(system)
        }
    }
}

fn tracestate_value(value: &str) -> bool {
    (1..=256).contains(&value.len())
        && value
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !value.ends_with(' ')
}

/// W3C Baggage, as the SDK's propagator reads and writes it but for two things: a value
/// keeps every `=` in it (`token=abc==` was cut to `abc`), and a member's properties go
/// out as they came in. The SDK decoded them and wrote them back without encoding, so
/// `k=v;p=a%2Cb%3D1` went on as `k=v;p=a,b=1`, a member the caller never sent.
#[derive(Debug, Default)]
pub(crate) struct Baggage;

/// The limits: W3C Baggage's 8192 bytes, and 64 members, the fewest it asks a
/// platform to pass on and the most the `opentelemetry` crate's `Baggage` keeps.
/// Members past either are left out, whole ("a platform MAY drop list-members until
/// both conditions are met", "MUST NOT propagate any partial list-members"), both as
/// a header is read and as one is written: encoding can triple a value's bytes.
const BAGGAGE_MAX_BYTES: usize = 8192;
const BAGGAGE_MAX_MEMBERS: usize = 64;

impl TextMapPropagator for Baggage {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let baggage = cx.baggage();
        if baggage.is_empty() {
            return;
        }
        let mut header = String::new();
        let mut member = String::new();
        for (name, (value, metadata)) in baggage.iter().take(BAGGAGE_MAX_MEMBERS) {
            member.clear();
            baggage_encode(&mut member, name.as_str().trim());
            member.push('=');
            // Whitespace in a value is its own (a header's `%20` read back), encoded
            // as every space is; only the header's own blanks around it are not.
            baggage_encode(&mut member, value.as_str());
            let properties = metadata.as_str().trim();
            if !properties.is_empty() {
                member.push(';');
                property_encode(&mut member, properties);
            }
            let comma = usize::from(!header.is_empty());
            if header.len() + comma + member.len() > BAGGAGE_MAX_BYTES {
                continue;
            }
            if comma == 1 {
                header.push(',');
            }
            header.push_str(&member);
        }
        if !header.is_empty() {
            injector.set("baggage", header);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some(header) = extractor.get("baggage") else {
            return cx.clone();
        };
        // The members that fit, whole, in the first 8192 bytes.
        let mut length = 0;
        let members = header
            .split(',')
            .take_while(|member| {
                length += member.len() + 1;
                length <= BAGGAGE_MAX_BYTES + 1
            })
            .filter_map(|member| {
                let (pair, properties) = member.split_once(';').unwrap_or((member, ""));
                let (name, value) = pair.split_once('=')?;
                let name = crate::config::reader::percent_decode(name.trim())?;
                // Octets that are not UTF-8 become U+FFFD, as the W3C text says of
                // decoding a value; the member is kept.
                let value = crate::config::reader::percent_decode_bytes(value.trim())?;
                let value = String::from_utf8_lossy(&value).into_owned();
                // Properties stay encoded: written back as they were sent.
                (!name.is_empty()).then(|| KeyValueMetadata::new(name, value, properties.trim()))
            })
            // Malformed members left out first: they take no place of a good one.
            .take(BAGGAGE_MAX_MEMBERS);
        cx.with_baggage(members)
    }

    fn fields(&self) -> FieldIter<'_> {
        static FIELDS: OnceLock<[String; 1]> = OnceLock::new();
        FieldIter::new(FIELDS.get_or_init(|| ["baggage".to_owned()]))
    }
}

/// Appends `text` with what a baggage key or value may not hold as it is (controls,
/// spaces, `"`, `,`, `;`, `\`, `=`, `%`, and every byte past ASCII) percent-encoded.
fn baggage_encode(out: &mut String, text: &str) {
    percent_encode(out, text, |b| {
        (0x21..=0x7e).contains(&b) && !b"\",;\\=%".contains(&b)
    });
}

/// Appends a member's `properties` as they are, but for what would break the header or
/// the list: controls (a line break made the header invalid, and every member was
/// lost), `,` (it would start a member of its own), `"` and `\\` (no baggage octets),
/// spaces within a key or value (only those around `;` and `=` are the grammar's),
/// and bytes past ASCII are percent-encoded. Properties from an incoming header are
/// encoded already and go on unchanged; `;`, `=` and `%` are the properties' own.
fn property_encode(out: &mut String, properties: &str) {
    use std::fmt::Write as _;
    let bytes = properties.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b' ' {
            // A run of spaces, kept where the grammar allows whitespace: next to `;`
            // or `=`, or at an end. One pass over the run, whatever its length.
            let end = bytes[i..]
                .iter()
                .position(|&c| c != b' ')
                .map_or(bytes.len(), |n| i + n);
            let separator = |c: Option<&u8>| matches!(c, None | Some(b';' | b'='));
            let keep =
                separator(i.checked_sub(1).and_then(|p| bytes.get(p))) || separator(bytes.get(end));
            for _ in i..end {
                out.push_str(if keep { " " } else { "%20" });
            }
            i = end;
            continue;
        }
        if b.is_ascii_graphic() && !matches!(b, b',' | b'"' | b'\\') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        i += 1;
    }
}

/// Appends `text`, each byte that `keep` refuses as `%XX`.
fn percent_encode(out: &mut String, text: &str, keep: fn(u8) -> bool) {
    use std::fmt::Write as _;
    for b in text.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Whether `value` is a `traceparent` of the form W3C Trace Context gives:
/// `version-traceid-parentid-flags` in lowercase hex of 2, 32, 16 and 2 digits,
/// version `ff` refused, and a later version's further fields after a `-`. The
/// OpenTelemetry propagator parses the fields as numbers and takes `00-1-1-01`.
fn well_formed_traceparent(value: &str) -> bool {
    let b = value.as_bytes();
    let hex = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
    };
    let dashes = [2, 35, 52].iter().all(|&i| b.get(i) == Some(&b'-'));
    let version_ok = hex(0..2) && &b[..2] != b"ff";
    let length_ok = match &b[..2.min(b.len())] {
        b"00" => b.len() == 55,
        _ => b.len() == 55 || b.get(55) == Some(&b'-'),
    };
    version_ok && dashes && hex(3..35) && hex(36..52) && hex(53..55) && length_ok
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Incoming headers for the propagators, which read one value per name.
struct HeaderExtractor<'a> {
    headers: &'a http::HeaderMap,
    /// `tracestate`, then `baggage`, joined with `,` when sent more than once (the
    /// W3C specifications make them one list; empty, which is no member, when one of
    /// the headers is not visible ASCII, as one such header sent alone is none);
    /// `None` when sent once or not at all.
    joined: [Option<String>; 2],
}

impl<'a> HeaderExtractor<'a> {
    fn new(headers: &'a http::HeaderMap) -> Self {
        let joined = |name: &str| {
            let mut values = headers.get_all(name).iter();
            values.next()?;
            values.next()?;
            let all: Option<Vec<&str>> = headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().ok())
                .collect();
            Some(all.map(|all| all.join(",")).unwrap_or_default())
        };
        HeaderExtractor {
            headers,
            joined: [joined("tracestate"), joined("baggage")],
        }
    }
}

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let one = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        match key {
            // Sent twice, it says nothing for sure.
            "traceparent" => {
                let mut sent = self.headers.get_all(key).iter();
                let first = sent.next()?.to_str().ok()?;
                sent.next().is_none().then_some(first)
            }
            "tracestate" => self.joined[0].as_deref().or_else(|| one(key)),
            "baggage" => self.joined[1].as_deref().or_else(|| one(key)),
            _ => one(key),
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.headers
            .keys()
            .map(http::header::HeaderName::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry::trace::TraceContextExt;

    /// The propagators as the exporters install them.
    fn install() {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContext::default()),
            Box::new(Baggage),
        ]));
    }

    #[test]
    fn context_and_baggage_round_trip_through_headers_and_maps() {
        install();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        headers.insert("tracestate", "vendor=abc".parse().unwrap());
        headers.insert("baggage", "tenant=acme".parse().unwrap());
        let cx = extract_headers(&headers);
        let span = cx.span().span_context().clone();
        assert_eq!(
            span.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(span.is_remote() && span.is_sampled());
        assert_eq!(
            cx.baggage().get("tenant").map(|v| v.to_string()),
            Some("acme".into())
        );

        let mut map = HashMap::new();
        inject_map(&cx, &mut map);
        assert_eq!(
            map["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(map["tracestate"], "vendor=abc");
        let back = extract_map(&map);
        assert_eq!(back.span().span_context().span_id(), span.span_id());

        let mut out = http::HeaderMap::new();
        inject_headers(&back, &mut out);
        assert_eq!(out["baggage"], "tenant=acme");
    }

    #[test]
    fn a_span_without_tracestate_sends_none_and_one_with_it_sends_it() {
        install();
        let cx = |state: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", PARENT.parse().unwrap());
            if !state.is_empty() {
                headers.insert("tracestate", state.parse().unwrap());
            }
            extract_headers(&headers)
        };
        let mut map = HashMap::new();
        inject_map(&cx(""), &mut map);
        assert!(map.contains_key("traceparent"), "{map:?}");
        assert!(!map.contains_key("tracestate"), "{map:?}");
        let mut headers = http::HeaderMap::new();
        inject_headers(&cx(""), &mut headers);
        assert!(headers.get("tracestate").is_none(), "{headers:?}");
        inject_headers(&cx("vendor=abc"), &mut headers);
        assert_eq!(headers["tracestate"], "vendor=abc");
        // Headers used again: the state of the span before does not stay.
        inject_headers(&cx(""), &mut headers);
        assert!(headers.get("tracestate").is_none(), "{headers:?}");
        map.insert("tracestate".to_owned(), "vendor=old".to_owned());
        inject_map(&cx(""), &mut map);
        assert!(!map.contains_key("tracestate"), "{map:?}");
    }

    /// Headers or a map used again for a call with no span, or no baggage, do not
    /// carry the trace or the baggage of the call before.
    #[test]
    fn a_carrier_used_again_keeps_nothing_of_the_call_before() {
        install();
        let mut incoming = http::HeaderMap::new();
        incoming.insert("traceparent", PARENT.parse().unwrap());
        incoming.insert("tracestate", "vendor=abc".parse().unwrap());
        incoming.insert("baggage", "user=alice".parse().unwrap());
        let first = extract_headers(&incoming);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-request-id", "7".parse().unwrap());
        let mut map = HashMap::new();
        inject_headers(&first, &mut headers);
        inject_map(&first, &mut map);
        for (name, value) in [
            ("traceparent", PARENT),
            ("tracestate", "vendor=abc"),
            ("baggage", "user=alice"),
        ] {
            assert_eq!(headers[name], value, "{headers:?}");
            assert_eq!(map[name], value, "{map:?}");
        }
        // A span of its own, no baggage: the baggage goes.
        let mut only_span = incoming.clone();
        only_span.remove("baggage");
        only_span.remove("tracestate");
        let second = extract_headers(&only_span);
        inject_headers(&second, &mut headers);
        inject_map(&second, &mut map);
        assert_eq!(headers["traceparent"], PARENT);
        assert!(
            headers.get("baggage").is_none() && headers.get("tracestate").is_none(),
            "{headers:?}"
        );
        assert!(
            !map.contains_key("baggage") && !map.contains_key("tracestate"),
            "{map:?}"
        );
        // No span and no baggage at all: nothing of it stays; other headers do. A
        // map's names in any case.
        map.insert("Baggage".to_owned(), "user=bob".to_owned());
        inject_headers(&Context::new(), &mut headers);
        inject_map(&Context::new(), &mut map);
        assert!(headers.get("traceparent").is_none(), "{headers:?}");
        assert_eq!(headers["x-request-id"], "7");
        assert!(map.is_empty(), "{map:?}");
    }

    /// Flags past the sampled bit (Level 2's `random`, `02`) keep the parent, and only
    /// the sampled bit goes on.
    #[test]
    fn other_trace_flags_keep_the_parent() {
        install();
        for (flags, sampled) in [("03", true), ("02", false), ("ff", true)] {
            let mut headers = http::HeaderMap::new();
            let parent = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
            headers.insert("traceparent", parent.parse().unwrap());
            let cx = extract_headers(&headers);
            let span = cx.span().span_context().clone();
            assert_eq!(span.span_id().to_string(), "00f067aa0ba902b7", "{flags}");
            assert_eq!(span.is_sampled(), sampled, "{flags}");
            let mut out = HashMap::new();
            inject_map(&cx, &mut out);
            let expected = if sampled { "01" } else { "00" };
            assert!(out["traceparent"].ends_with(expected), "{flags}: {out:?}");
        }
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        install();
        for bad in [
            "",
            "00-zz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // The propagator parsed these as numbers and took them.
            "00-1-1-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", bad.parse().unwrap());
            assert!(
                !extract_headers(&headers).span().span_context().is_valid(),
                "{bad}"
            );
        }
        // Sent twice, it says nothing for sure.
        let mut headers = http::HeaderMap::new();
        for parent in [PARENT, PARENT] {
            headers.append("traceparent", parent.parse().unwrap());
        }
        assert!(!extract_headers(&headers).span().span_context().is_valid());
    }

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_later_version_with_more_fields_is_read_as_version_00() {
        install();
        for good in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-later",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", good.parse().unwrap());
            let cx = extract_headers(&headers);
            assert_eq!(
                cx.span().span_context().span_id().to_string(),
                "00f067aa0ba902b7",
                "{good}"
            );
        }
    }

    #[test]
    fn a_list_sent_twice_with_a_header_not_ascii_is_none_as_it_is_sent_once() {
        install();
        let odd = http::HeaderValue::from_bytes(b"rojo=\xe9").unwrap();
        for twice in [true, false] {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", PARENT.parse().unwrap());
            if twice {
                headers.append("tracestate", "foo=1".parse().unwrap());
                headers.append("baggage", "a=1".parse().unwrap());
            }
            headers.append("tracestate", odd.clone());
            headers.append("baggage", odd.clone());
            let cx = extract_headers(&headers);
            let state = cx.span().span_context().trace_state().clone();
            assert_eq!(state.header(), "", "twice: {twice}");
            assert_eq!(cx.baggage().len(), 0, "twice: {twice}");
            assert!(cx.span().span_context().is_valid(), "the parent is kept");
        }
    }

    #[test]
    fn tracestate_and_baggage_sent_twice_are_one_list() {
        install();
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", PARENT.parse().unwrap());
        headers.append("tracestate", "foo=1".parse().unwrap());
        headers.append("tracestate", "rojo=2".parse().unwrap());
        headers.append("baggage", "a=1".parse().unwrap());
        headers.append("baggage", "b=2".parse().unwrap());
        let cx = extract_headers(&headers);
        let state = cx.span().span_context().trace_state().clone();
        assert_eq!(state.get("foo"), Some("1"));
        assert_eq!(state.get("rojo"), Some("2"));
        assert_eq!(
            cx.baggage().get("a").map(|v| v.to_string()),
            Some("1".into())
        );
        assert_eq!(
            cx.baggage().get("b").map(|v| v.to_string()),
            Some("2".into())
        );
    }

    fn state_of(tracestate: &str) -> Option<String> {
        let mut map = HashMap::new();
        map.insert("traceparent".to_owned(), PARENT.to_owned());
        map.insert("tracestate".to_owned(), tracestate.to_owned());
        let cx = extract_map(&map);
        let span = cx.span();
        assert!(span.span_context().is_valid(), "{tracestate}");
        Some(span.span_context().trace_state().header()).filter(|h| !h.is_empty())
    }

    /// A `tracestate` the grammar refuses is dropped whole (the trace goes on).
    #[test]
    fn a_malformed_tracestate_is_dropped_whole() {
        install();
        let good = "rojo=00f067aa0ba902b7,fw529a3039@dt=t61rcWkgMzE, congo=a b";
        assert_eq!(
            state_of(good).as_deref(),
            Some("rojo=00f067aa0ba902b7,fw529a3039@dt=t61rcWkgMzE,congo=a b")
        );
        let most: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        assert_eq!(state_of(&most.join(",")), Some(most.join(",")));
        let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        // A client's list of 50 000 members: refused at the 33rd. Read to its end with
        // every key compared to all before it, it took 2.5 s of a worker's time.
        let flood: Vec<String> = (0..50_000).map(|i| format!("k{i}=v")).collect();
        for bad in [
            flood.join(","),
            "foo=1,foo=2".to_owned(),
            "foo=".to_owned(),
            "Foo=1".to_owned(),
            "foo=a,b".to_owned(),
            "foo=a\u{1}b".to_owned(),
            too_many.join(","),
        ] {
            assert_eq!(state_of(&bad), None, "{bad}");
        }
    }

    /// A key whose system id has 14 characters is W3C's and not the SDK's: that
    /// member is left out and said, the rest kept. The whole list was dropped.
    #[test]
    fn a_member_the_sdk_refuses_is_left_out_and_the_rest_kept() {
        install();
        let longest = "t@abcdefghijklmn=1";
        let before = crate::problem::reports("tracestate-member");
        assert_eq!(
            state_of(&format!("rojo=1, {longest},congo=2")).as_deref(),
            Some("rojo=1,congo=2")
        );
        assert_eq!(state_of(longest), None);
        assert!(crate::problem::reports("tracestate-member") > before);
        // A list of such members is one report, not one a member.
        let many: Vec<String> = (0..32).map(|i| format!("t{i}@abcdefghijklmn=1")).collect();
        let said = crate::problem::reports("tracestate-member");
        assert_eq!(state_of(&many.join(",")), None);
        assert_eq!(crate::problem::reports("tracestate-member"), said + 1);
        let thirteen = "t@abcdefghijklm=1";
        assert_eq!(state_of(thirteen).as_deref(), Some(thirteen));
        // Not read at all without a `traceparent`: nothing to say.
        let said = crate::problem::reports("tracestate-member");
        let mut map = HashMap::new();
        map.insert("tracestate".to_owned(), longest.to_owned());
        assert!(!extract_map(&map).span().span_context().is_valid());
        assert_eq!(crate::problem::reports("tracestate-member"), said);
    }

    /// Empty members are the grammar's, and not counted among the 32: the SDK counted
    /// them, and dropped the last members of such a list.
    #[test]
    fn empty_members_do_not_push_members_out() {
        install();
        let most: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        let with_gaps = format!("{}, ,,{}", most[..16].join(","), most[16..].join(","));
        assert_eq!(state_of(&with_gaps), Some(most.join(",")));
    }

    /// Message headers are read in any case, as HTTP headers are and as
    /// `inject_map` clears them: a Go producer sends `Traceparent`. One name in two
    /// cases is a header sent twice.
    #[test]
    fn message_headers_are_read_in_any_case() {
        install();
        let mut map = HashMap::new();
        map.insert("Traceparent".to_owned(), PARENT.to_owned());
        map.insert("Tracestate".to_owned(), "rojo=1".to_owned());
        map.insert("Baggage".to_owned(), "a=1".to_owned());
        let cx = extract_map(&map);
        let span = cx.span();
        assert!(span.span_context().is_valid());
        assert_eq!(span.span_context().trace_state().header(), "rojo=1");
        assert_eq!(
            cx.baggage().get("a").map(ToString::to_string),
            Some("1".into())
        );
        let other = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-01";
        map.insert("traceparent".to_owned(), other.to_owned());
        assert!(!extract_map(&map).span().span_context().is_valid());
    }

    /// Message headers are read as strictly as HTTP ones.
    #[test]
    fn a_malformed_traceparent_in_a_map_starts_a_new_trace() {
        install();
        let mut map = HashMap::new();
        map.insert("traceparent".to_owned(), "00-1-1-01".to_owned());
        assert!(!extract_map(&map).span().span_context().is_valid());
    }

    /// Values keep every `=`; properties go out as they came in, so an encoded `,` in
    /// one never becomes a member of its own downstream.
    #[test]
    fn baggage_values_and_properties_go_on_as_they_came() {
        install();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "baggage",
            "token=abc==,k=v;p=a%2Cinjected%3D1,odd=a%20b%2Cc,edge=%20x%09"
                .parse()
                .unwrap(),
        );
        let cx = extract_headers(&headers);
        let baggage = cx.baggage();
        assert_eq!(
            baggage.get("token").map(|v| v.to_string()),
            Some("abc==".into())
        );
        assert_eq!(
            baggage.get("odd").map(|v| v.to_string()),
            Some("a b,c".into())
        );
        let mut out = http::HeaderMap::new();
        inject_headers(&cx, &mut out);
        let sent = out["baggage"].to_str().unwrap();
        let members: Vec<&str> = sent.split(',').collect();
        assert_eq!(members.len(), 4, "{sent}");
        assert!(members.contains(&"token=abc%3D%3D"), "{sent}");
        assert!(members.contains(&"k=v;p=a%2Cinjected%3D1"), "{sent}");
        assert!(members.contains(&"odd=a%20b%2Cc"), "{sent}");
        // Encoded blanks at a value's ends are the value's: they went on trimmed.
        assert!(members.contains(&"edge=%20x%09"), "{sent}");
    }

    /// Properties a program gives with a line break, a `,` or letters past ASCII are
    /// encoded there: the header went unsent whole (a line break), or gained a member
    /// (a `,`).
    #[test]
    fn properties_given_in_code_cannot_break_the_header() {
        install();
        let cx = Context::new().with_baggage([
            KeyValueMetadata::new("k", "v", "p=a\nb,c;q=é"),
            KeyValueMetadata::new("other", "1", ""),
        ]);
        let mut out = http::HeaderMap::new();
        inject_headers(&cx, &mut out);
        let sent = out
            .get("baggage")
            .expect("the header is sent")
            .to_str()
            .unwrap();
        let mut members: Vec<&str> = sent.split(',').collect();
        members.sort_unstable();
        assert_eq!(members, ["k=v;p=a%0Ab%2Cc;q=%C3%A9", "other=1"], "{sent}");

        // `"`, `\` and spaces within a value are no baggage octets (a Go SDK
        // downstream refused the whole header); spaces around `;` and `=` stay.
        let cx = Context::new().with_baggage([KeyValueMetadata::new(
            "k",
            "v",
            "note=a b ; label = \"x\\y\"",
        )]);
        let mut out = http::HeaderMap::new();
        inject_headers(&cx, &mut out);
        assert_eq!(
            out["baggage"].to_str().unwrap(),
            "k=v;note=a%20b ; label = %22x%5Cy%22"
        );
    }

    /// Members past 8192 bytes are left out whole, as a header is read and as one is
    /// written; those within go on. A header over the limit was dropped whole, and
    /// one written from values that encoding made longer went out over it.
    #[test]
    fn baggage_past_its_byte_limit_keeps_the_members_that_fit() {
        install();
        let mut headers = http::HeaderMap::new();
        let long = "x".repeat(8170);
        headers.insert(
            "baggage",
            format!("tenant=acme,long={long},after=1").parse().unwrap(),
        );
        let cx = extract_headers(&headers);
        let baggage = cx.baggage();
        assert_eq!(
            baggage.get("tenant").map(|v| v.to_string()),
            Some("acme".into())
        );
        assert_eq!(baggage.get("long").map(|v| v.to_string().len()), Some(8170));
        assert!(baggage.get("after").is_none(), "past 8192 bytes");

        // 3000 `é` are 6000 bytes decoded, 18000 encoded.
        let cx = Context::new().with_baggage([
            KeyValueMetadata::new("tenant", "acme", ""),
            KeyValueMetadata::new("note", "é".repeat(3000), ""),
        ]);
        let mut out = http::HeaderMap::new();
        inject_headers(&cx, &mut out);
        assert_eq!(out["baggage"].to_str().unwrap(), "tenant=acme");
    }

    /// 64 members are kept, malformed ones not counted among them (with 180 allowed
    /// in, the `opentelemetry` crate kept 64 and dropped the rest without a word).
    #[test]
    fn baggage_keeps_64_good_members() {
        install();
        let mut members = vec!["no-equals".to_owned(), "=empty-name".to_owned()];
        members.extend((0..70).map(|i| format!("k{i}={i}")));
        let mut headers = http::HeaderMap::new();
        headers.insert("baggage", members.join(",").parse().unwrap());
        let cx = extract_headers(&headers);
        let baggage = cx.baggage();
        assert_eq!(baggage.len(), 64);
        assert_eq!(baggage.get("k63").map(|v| v.to_string()), Some("63".into()));
        assert!(baggage.get("k64").is_none());
    }

    /// A value whose octets are not UTF-8 is kept, each such octet U+FFFD, as the
    /// W3C text says of decoding; the member was dropped.
    #[test]
    fn a_value_that_is_not_utf8_is_kept_with_replacement_characters() {
        install();
        let mut headers = http::HeaderMap::new();
        headers.insert("baggage", "user=%FFx,tenant=acme".parse().unwrap());
        let cx = extract_headers(&headers);
        let baggage = cx.baggage();
        assert_eq!(
            baggage.get("user").map(|v| v.to_string()),
            Some("\u{FFFD}x".into())
        );
        assert_eq!(
            baggage.get("tenant").map(|v| v.to_string()),
            Some("acme".into())
        );
    }
}

//! Reading one setting through the layers of an [`Env`], the error a refused value
//! becomes, and the shapes of value several settings share (milliseconds,
//! `key=value` lists, percent-encoding).

use std::fmt;
use std::time::Duration;

use coldstart_bootstrap::{Env, Layer};

use super::Build;

/// A variable with a value it does not accept; what is used instead is `instead`
/// (usually the default).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// The variable.
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// What it accepts, in words.
    pub accepts: &'static str,
    /// What happens instead, such as `using the default`.
    pub instead: &'static str,
    /// Where the value came from.
    pub layer: Layer,
    /// What is wrong with it, where the value is not shown (a headers value).
    pub why: Option<String>,
}

/// What a rejected value usually leads to.
pub(super) const USING_THE_DEFAULT: &str = "using the default";

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "set {} to {}, got `{}`{}{}; {}",
            self.key,
            self.accepts,
            coldstart_bootstrap::plan::settings::OneLine(&self.value),
            self.layer.describe(self.key),
            self.why
                .as_ref()
                .map_or(String::new(), |why| format!(" ({why})")),
            self.instead
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// Whether part of the value given is used all the same (the known propagators
    /// of a list with an unknown one; a batch size cut to the queue's; the headers
    /// but one that frames the body): the setting still comes from where it was
    /// given, adjusted.
    pub fn adjusted(&self) -> bool {
        matches!(
            self.instead,
            USING_THE_KNOWN_ONES | THE_QUEUE_SIZE_IS_USED | THE_OTHER_HEADERS_ARE_SENT
        )
    }
}

pub(super) const USING_THE_KNOWN_ONES: &str = "using the known ones";
pub(super) const THE_QUEUE_SIZE_IS_USED: &str = "the queue size is used";
pub(super) const THE_OTHER_HEADERS_ARE_SENT: &str = "the other headers are sent";

/// Reads one variable; a bad value is recorded in `errors` and yields `None`.
pub(super) struct Reader<'a> {
    pub(super) env: &'a Env,
    pub(super) build: Build,
    pub(super) errors: Vec<ConfigError>,
}

impl Reader<'_> {
    pub(super) fn raw(&self, key: &str) -> Option<String> {
        self.layered(key).map(|(v, _)| v)
    }

    /// A value, trimmed, and the layer it came from (a blank one is unset in
    /// [`Env::lookup`]).
    pub(super) fn layered(&self, key: &str) -> Option<(String, Layer)> {
        let (v, layer) = self.env.lookup(key)?;
        Some((v.to_string_lossy().trim().to_owned(), layer))
    }

    pub(super) fn read<T>(
        &mut self,
        key: &'static str,
        accepts: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let (raw, layer) = self.layered(key)?;
        let parsed = parse(&raw);
        if parsed.is_none() {
            self.refuse(key, raw, layer, accepts, USING_THE_DEFAULT);
        }
        parsed
    }

    /// The signal's own setting (`own`), else the general one: a bad `own` is said,
    /// naming the general setting as what is used `instead` when that is usable.
    pub(super) fn read_either<T>(
        &mut self,
        names: [&'static str; 2],
        accepts: &'static str,
        instead: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        self.read_either_from(names, accepts, instead, parse)
            .map(|(value, _)| value)
    }

    /// Whether `own`, a more specific setting than `general`, is the one to read: it
    /// is set, and `general` is not set in a layer above it. Layers come first (an
    /// environment variable overrides the file's value, however specific), then the
    /// more specific setting.
    pub(super) fn own_first(&self, own: &str, general: &str) -> bool {
        self.env.is_set(own) && !self.env.set_above(general, own)
    }

    /// [`Reader::read_either`], with the name the value was read from.
    pub(super) fn read_either_from<T>(
        &mut self,
        [own, general]: [&'static str; 2],
        accepts: &'static str,
        instead: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<(T, &'static str)> {
        if !self.own_first(own, general) {
            return self
                .read(general, accepts, parse)
                .map(|value| (value, general));
        }
        if let Some((raw, layer)) = self.layered(own) {
            if let Some(value) = parse(&raw) {
                return Some((value, own));
            }
            let usable = |(v, _): (String, Layer)| parse(&v);
            let instead = if self.layered(general).and_then(usable).is_some() {
                instead
            } else {
                USING_THE_DEFAULT
            };
            self.refuse(own, raw, layer, accepts, instead);
        }
        self.read(general, accepts, parse)
            .map(|value| (value, general))
    }

    pub(super) fn refuse(
        &mut self,
        key: &'static str,
        value: String,
        layer: Layer,
        accepts: &'static str,
        instead: &'static str,
    ) -> &mut ConfigError {
        // Header values and a URL's user info are secrets: never repeated.
        let value = coldstart_bootstrap::config::shown(key, &value);
        self.errors.push(ConfigError {
            key,
            value,
            accepts,
            instead,
            layer,
            why: None,
        });
        let last = self.errors.len() - 1;
        &mut self.errors[last]
    }
}

/// `k1=v1,k2=v2` with percent-encoded values (W3C baggage style, as the OpenTelemetry
/// specification reads `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`).
pub(super) fn parse_pairs(s: &str) -> Option<Vec<(String, String)>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then_some(())?;
            Some((k.to_owned(), percent_decode(v.trim())?))
        })
        .collect()
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    String::from_utf8(percent_decode_bytes(s)?).ok()
}

/// The bytes `s` percent-encodes; `None` for a `%` not followed by two hex digits.
pub(crate) fn percent_decode_bytes(s: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail
                .get(..2)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    Some(bytes)
}

/// Whole milliseconds, up to one hour (the `OTEL_*` timeouts and delays).
pub(super) fn millis(s: &str) -> Option<Duration> {
    s.parse::<u64>()
        .ok()
        .filter(|n| *n <= 3_600_000)
        .map(Duration::from_millis)
}

/// What a timeout accepts: a timeout of 0 would fail every export.
pub(super) const TIMEOUT: &str = "milliseconds, from 1 to 3600000";

/// [`millis`] above zero.
pub(super) fn timeout(s: &str) -> Option<Duration> {
    millis(s).filter(|d| !d.is_zero())
}

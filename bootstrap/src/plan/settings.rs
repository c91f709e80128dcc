//! Explicit settings: attribute arguments and `COLDSTART_*` variables, their accepted
//! values, and the errors that name the bad input. The macro crate uses the same
//! parsers, so an attribute and a variable accept exactly the same values.

use std::fmt;

use super::{Flavor, Strategy};
use crate::env::{Env, Layer};

/// Settings given in code (attribute arguments); `None` leaves the choice to the plan.
///
/// ```
/// use coldstart_bootstrap::{Settings, Strategy};
/// let s = Settings { strategy: Some(Strategy::Minimal), ..Settings::NONE };
/// assert_eq!(s.worker_threads, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    /// `strategy = "minimal" | "balanced" | "throughput"`.
    pub strategy: Option<Strategy>,
    /// `flavor = "current_thread" | "multi_thread"` (as in `#[tokio::main]`).
    pub flavor: Option<Flavor>,
    /// `worker_threads = N` (as in `#[tokio::main]`).
    pub worker_threads: Option<usize>,
    /// `max_blocking_threads = N`.
    pub max_blocking_threads: Option<usize>,
    /// `thread_stack_size = N` (bytes).
    pub thread_stack_size: Option<usize>,
    /// `prewarm = true | false`.
    pub prewarm: Option<bool>,
    /// `profile = "path"`: the init profile embedded at compile time.
    pub init_profile: Option<&'static str>,
    /// The version of the program's package (`CARGO_PKG_VERSION` where `main` is),
    /// for telemetry's `service.version`.
    pub service_version: Option<&'static str>,
    /// `name = "..."`: the tokio runtime's name (`Handle::name`), as in
    /// `#[tokio::main]`; not blank.
    pub name: Option<&'static str>,
}

impl Settings {
    /// Checks the numbers set in code against what their variables accept. The
    /// attribute's arguments were checked at compile time; a `Builder`'s, or a
    /// `Settings` built by hand, only here (tokio panics on 0 worker threads, and
    /// starts 5000 if asked).
    ///
    /// # Errors
    ///
    /// [`PlanError::Invalid`] naming the argument, its value and the accepted values.
    pub fn check(&self) -> Result<(), PlanError> {
        let numbers = [
            (&WORKER_THREADS, self.worker_threads, WORKERS),
            (&MAX_BLOCKING_THREADS, self.max_blocking_threads, BLOCKING),
            (&THREAD_STACK_SIZE, self.thread_stack_size, STACK),
        ];
        for (key, value, accepted) in numbers {
            if let Some(n) = value.filter(|n| !accepted.contains(n)) {
                return Err(key.invalid(key.argument, &n.to_string(), None));
            }
        }
        // tokio panics on a blank one.
        if let Some(name) = self.name.filter(|n| parse_runtime_name(n).is_none()) {
            return Err(RUNTIME_NAME.invalid(RUNTIME_NAME.argument, name, None));
        }
        Ok(())
    }

    /// No explicit settings.
    pub const NONE: Settings = Settings {
        strategy: None,
        flavor: None,
        worker_threads: None,
        max_blocking_threads: None,
        thread_stack_size: None,
        prewarm: None,
        init_profile: None,
        service_version: None,
        name: None,
    };
}

/// A setting's name as an attribute argument and as a variable, and what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The attribute argument.
    pub argument: &'static str,
    /// The environment variable.
    pub variable: &'static str,
    /// The accepted values, in words.
    pub accepts: &'static str,
}

/// `strategy` / `COLDSTART_STRATEGY`.
pub const STRATEGY: Key = Key {
    argument: "strategy",
    variable: "COLDSTART_STRATEGY",
    accepts: "one of `minimal`, `balanced`, `throughput`",
};
/// `flavor` / `COLDSTART_FLAVOR`.
pub const FLAVOR: Key = Key {
    argument: "flavor",
    variable: "COLDSTART_FLAVOR",
    accepts: "one of `current_thread`, `multi_thread`",
};
/// `worker_threads` / `COLDSTART_WORKER_THREADS`.
pub const WORKER_THREADS: Key = Key {
    argument: "worker_threads",
    variable: "COLDSTART_WORKER_THREADS",
    accepts: "a whole number from 1 to 1024",
};
/// tokio's own variable, honoured as tokio honours it: only when no worker count is
/// given in code. tokio takes any count above 0; coldstart bounds it as its own
/// variable: `355435435`, which the fuzzer tried, made tokio ask for 45 GB at once and
/// the process abort.
pub const TOKIO_WORKER_THREADS: Key = Key {
    argument: "worker_threads",
    variable: "TOKIO_WORKER_THREADS",
    accepts: "a whole number from 1 to 1024",
};
/// `max_blocking_threads` / `COLDSTART_MAX_BLOCKING_THREADS`.
pub const MAX_BLOCKING_THREADS: Key = Key {
    argument: "max_blocking_threads",
    variable: "COLDSTART_MAX_BLOCKING_THREADS",
    accepts: "a whole number from 1 to 4096",
};
/// `thread_stack_size` / `COLDSTART_THREAD_STACK_SIZE`.
pub const THREAD_STACK_SIZE: Key = Key {
    argument: "thread_stack_size",
    variable: "COLDSTART_THREAD_STACK_SIZE",
    accepts: "a size from 64K to 256M: a whole number of bytes, or with a `K`, `KB`, `KiB`, `M`, `MB` or `MiB` suffix in any case (powers of 1024)",
};
/// `prewarm` / `COLDSTART_PREWARM`.
pub const PREWARM: Key = Key {
    argument: "prewarm",
    variable: "COLDSTART_PREWARM",
    accepts: "one of `on`, `off`, `true`, `false`, `1`, `0`",
};

/// `name`: the tokio runtime's name, an argument of the attributes only (as of
/// `#[tokio::main]`), not a variable.
pub const RUNTIME_NAME: Key = Key {
    argument: "name",
    variable: "",
    accepts: "a name that is not blank",
};

/// `COLDSTART_FIRST_RESPONSE_FALLBACK`: how long to wait for a first response before
/// deferred work starts anyway, for programs that never serve a request.
pub const FIRST_RESPONSE_FALLBACK: Key = Key {
    argument: "",
    variable: "COLDSTART_FIRST_RESPONSE_FALLBACK",
    accepts: "a duration, a whole number with `ms`, `s`, `m` or `h` (`10s`, `500ms`, `1m`), up to 1h; or `off`",
};

/// `COLDSTART_DRAIN_TIMEOUT`: after SIGTERM or SIGINT, how long a body that awaits
/// `draining()` has to finish its in-flight work before it is cancelled.
pub const DRAIN_TIMEOUT: Key = Key {
    argument: "",
    variable: "COLDSTART_DRAIN_TIMEOUT",
    accepts: "a duration, a whole number with `ms`, `s`, `m` or `h` (`10s`, `500ms`, `1m`), up to 1h",
};

/// Parses a duration for [`FIRST_RESPONSE_FALLBACK`]: `Some(None)` for `off`.
pub fn parse_fallback(s: &str) -> Option<Option<std::time::Duration>> {
    if s == "off" {
        return Some(None);
    }
    parse_duration(s).map(Some)
}

/// Parses `500ms`, `10s`, `2m` or `1h`, up to one hour.
///
/// ```
/// # use coldstart_bootstrap::plan::settings::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
/// assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
/// assert_eq!(parse_duration("2h"), None);
/// ```
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = digits.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    (ms <= 3_600_000).then(|| std::time::Duration::from_millis(ms))
}

/// `COLDSTART_LOG`: `debug` prints the budget, the plan and the start-up timeline once,
/// on stderr, when the body of `main` starts. It has no attribute argument.
pub const LOG: Key = Key {
    argument: "",
    variable: "COLDSTART_LOG",
    accepts: "one of `off`, `debug`",
};

/// Whether `COLDSTART_LOG` asks for the start-up report.
///
/// # Errors
///
/// `COLDSTART_LOG` set to something other than `off` or `debug`.
pub fn debug_log(env: &Env) -> Result<bool, PlanError> {
    LOG.read_env(env, |s| match s {
        "off" | "" => Some(false),
        "debug" => Some(true),
        _ => None,
    })
    .map(|v| v.is_some_and(|(on, _)| on))
}

/// Every key, for documentation and for the macro's list of valid arguments.
pub const KEYS: [Key; 6] = [
    STRATEGY,
    FLAVOR,
    WORKER_THREADS,
    MAX_BLOCKING_THREADS,
    THREAD_STACK_SIZE,
    PREWARM,
];

/// A setting with a value that is not accepted, or settings that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// `name` (a variable or an argument) has a value it does not accept.
    Invalid {
        /// The variable or argument.
        name: &'static str,
        /// The value given.
        value: String,
        /// The accepted values, in words.
        accepts: &'static str,
        /// Where a variable's value came from (`None` for an attribute argument).
        layer: Option<Layer>,
    },
    /// A configuration file that cannot be used.
    File(crate::config::FileError),
    /// Two settings contradict each other.
    Conflict(String),
}

/// A value as an error line shows it: a control character (a line break from an
/// escape in the file or from a variable) written as its escape, so the line stays one,
/// and so is a character that shows nothing or turns the text around (a zero-width
/// space, a byte order mark, a bidirectional control): pasted in, `minimal\u{200b}`
/// was shown as `minimal`, the value the error says is accepted.
pub struct OneLine<'a>(pub &'a str);

/// Whether `c` shows nothing or breaks a line where `is_control` does not: soft
/// hyphen, the grapheme joiner, zero-width and joiner characters, direction marks and
/// controls, the line and paragraph separators, word joiners, invisible operators,
/// Hangul fillers, variation selectors (Mongolian ones too), the byte order mark,
/// interlinear annotation marks, tag characters.
pub fn invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{180b}'..='\u{180f}'
        | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}'
        | '\u{e0100}'..='\u{e01ef}')
}

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else if invisible(c) {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Invalid {
                name,
                value,
                accepts,
                layer,
            } => {
                write!(f, "set {name} to {accepts}, got `{}`", OneLine(value))?;
                match layer {
                    Some(layer) => write!(f, "{}", layer.describe(name)),
                    None => Ok(()),
                }
            }
            PlanError::File(e) => write!(f, "{e}"),
            PlanError::Conflict(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for PlanError {}

impl Key {
    fn invalid(&self, name: &'static str, value: &str, layer: Option<Layer>) -> PlanError {
        PlanError::Invalid {
            name,
            value: value.to_owned(),
            accepts: self.accepts,
            layer,
        }
    }

    /// Reads this key's variable from `env` (any layer) and parses it with `parse`;
    /// `Ok(None)` when it is not set.
    pub(crate) fn read_env<T>(
        &self,
        env: &Env,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<(T, Layer)>, PlanError> {
        let Some((raw, layer)) = env.lookup(self.variable) else {
            return Ok(None);
        };
        let text = raw.to_string_lossy();
        parse(text.trim())
            .map(|v| Some((v, layer)))
            .ok_or_else(|| self.invalid(self.variable, &text, Some(layer)))
    }

    /// [`Key::read_env`] beside an attribute argument (`argument_given`): the
    /// argument stands above the file, so the file's value is neither read nor
    /// checked, as it is not under a `Builder`'s value (whose code layer hides it).
    pub(crate) fn read_env_over<T>(
        &self,
        env: &Env,
        parse: fn(&str) -> Option<T>,
        argument_given: bool,
    ) -> Result<Option<(T, Layer)>, PlanError> {
        if argument_given && self.set_in_file(env) {
            return Ok(None);
        }
        self.read_env(env, parse)
    }

    /// Whether this key's value comes from the file (not generic: one copy).
    pub(crate) fn set_in_file(&self, env: &Env) -> bool {
        matches!(env.lookup(self.variable), Some((_, Layer::File { .. })))
    }

    /// Parses an attribute argument's value; the error names the argument.
    pub fn parse_argument<T>(
        &self,
        value: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, PlanError> {
        parse(value).ok_or_else(|| self.invalid(self.argument, value, None))
    }
}

/// Parses a strategy name.
pub fn parse_strategy(s: &str) -> Option<Strategy> {
    match s {
        "minimal" => Some(Strategy::Minimal),
        "balanced" => Some(Strategy::Balanced),
        "throughput" => Some(Strategy::Throughput),
        _ => None,
    }
}

/// Parses a flavor name, as `#[tokio::main]` spells it.
pub fn parse_flavor(s: &str) -> Option<Flavor> {
    match s {
        "current_thread" => Some(Flavor::CurrentThread),
        "multi_thread" => Some(Flavor::MultiThread),
        _ => None,
    }
}

/// Parses a worker-thread count (1 to 1024).
pub fn parse_workers(s: &str) -> Option<usize> {
    s.parse().ok().filter(|n| WORKERS.contains(n))
}

/// The worker counts accepted.
pub(crate) const WORKERS: std::ops::RangeInclusive<usize> = 1..=1024;
/// The blocking-thread caps accepted.
const BLOCKING: std::ops::RangeInclusive<usize> = 1..=4096;
/// The stack sizes accepted, in bytes.
const STACK: std::ops::RangeInclusive<usize> = 64 << 10..=256 << 20;

/// Parses `TOKIO_WORKER_THREADS`: a whole number, bounded as `COLDSTART_WORKER_THREADS`
/// is (tokio takes any above 0).
pub fn parse_tokio_workers(s: &str) -> Option<usize> {
    s.parse().ok().filter(|n| WORKERS.contains(n))
}

/// Parses a blocking-thread cap (1 to 4096).
pub fn parse_blocking(s: &str) -> Option<usize> {
    s.parse().ok().filter(|n| BLOCKING.contains(n))
}

/// Parses a stack size: bytes, or a number with a `K`/`KiB` or `M`/`MiB` suffix
/// (powers of 1024), from 64 KiB to 256 MiB.
pub fn parse_stack_size(s: &str) -> Option<usize> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let unit: usize = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return None,
    };
    let bytes = digits.parse::<usize>().ok()?.checked_mul(unit)?;
    STACK.contains(&bytes).then_some(bytes)
}

/// Takes a runtime name that is not blank, as tokio does (it panics on a blank one).
pub fn parse_runtime_name(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

/// Parses a switch.
pub fn parse_switch(s: &str) -> Option<bool> {
    match s {
        "on" | "true" | "1" => Some(true),
        "off" | "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn error_names_the_variable_and_the_accepted_values() {
        let env = Env::fixed([("COLDSTART_WORKER_THREADS", "abc")]);
        let err = WORKER_THREADS.read_env(&env, parse_workers).unwrap_err();
        assert_eq!(
            err.to_string(),
            "set COLDSTART_WORKER_THREADS to a whole number from 1 to 1024, got `abc`"
        );
    }

    /// A value with a character that shows nothing is shown with it escaped, so it
    /// does not look like the value the error says is accepted.
    #[test]
    fn invisible_characters_are_shown_escaped() {
        let env = Env::fixed([("COLDSTART_STRATEGY", "minimal\u{200b}\u{202e}x\u{feff}")]);
        let err = STRATEGY.read_env(&env, parse_strategy).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("got `minimal\\u{200b}\\u{202e}x\\u{feff}`"),
            "{err}"
        );
        assert_eq!(OneLine("é ü\u{7}").to_string(), "é ü\\u{7}");
        assert_eq!(
            OneLine("a\u{2028}b").to_string(),
            "a\\u{2028}b",
            "a line separator"
        );
    }

    #[test]
    fn stack_sizes() {
        assert_eq!(parse_stack_size("2M"), Some(2 << 20));
        assert_eq!(parse_stack_size("256KiB"), Some(256 << 10));
        assert_eq!(parse_stack_size("1048576"), Some(1 << 20));
        assert_eq!(parse_stack_size("1K"), None, "below 64K");
        assert_eq!(parse_stack_size("1G"), None);
        assert_eq!(parse_stack_size("99999999999999999999M"), None);
    }

    #[test]
    fn bounds() {
        assert_eq!(parse_workers("0"), None);
        assert_eq!(parse_workers("1024"), Some(1024));
        assert_eq!(parse_workers("1025"), None);
        assert_eq!(parse_blocking("4096"), Some(4096));
        assert_eq!(parse_switch("off"), Some(false));
        assert_eq!(parse_strategy("Minimal"), None, "names are lower case");
        use std::time::Duration;
        assert_eq!(parse_fallback("10s"), Some(Some(Duration::from_secs(10))));
        assert_eq!(
            parse_fallback("250ms"),
            Some(Some(Duration::from_millis(250)))
        );
        assert_eq!(parse_fallback("off"), Some(None));
        assert_eq!(parse_fallback("10"), None, "a unit is required");
        assert_eq!(parse_fallback("2h"), None);
    }

    proptest! {
        #[test]
        // The files' own alphabet, line breaks and blanks included, as often as any
        // text: `\\PC*` drew no control character, and so one line only.
        fn parsers_never_panic(s in prop_oneof!["[0-9a-z:/= \\t\\n\\r\\x0b\\-]{0,64}", "(?s).{0,64}"]) {
            let _ = (parse_strategy(&s), parse_flavor(&s), parse_workers(&s));
            let _ = (parse_blocking(&s), parse_stack_size(&s), parse_switch(&s), parse_fallback(&s));
        }
    }
}

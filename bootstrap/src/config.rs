/*!
The optional configuration file: which file, and what it says.

Settings come in layers, each overriding the one before: defaults, then this file,
then code (attribute arguments, `coldstart::Builder`), then environment variables.
The file is `COLDSTART_CONFIG` if set (`off` for none), else `config/<env>.toml`
when `COLDSTART_ENV` (then `APP_ENV`) names an environment, else `coldstart.toml`,
all relative to the working directory. A file that is not there is not an error,
except the one `COLDSTART_CONFIG` names.

The file is TOML with two tables, and a key in them is a variable's name without its
prefix, in lower case: `[coldstart] worker_threads = 2` is `COLDSTART_WORKER_THREADS=2`,
`[otel] service_name = "checkout"` is `OTEL_SERVICE_NAME=checkout`. Values are
strings, whole or decimal numbers, or booleans; they are checked exactly as the
variable would be. Anything else (another table, an array, a key coldstart does not
read, a key given twice) is an error naming the file and the line: the file is read
before the runtime is built, and a setting that is silently ignored is worse than a
service that says why it did not start.

This module never panics on what a file contains, and reads at most one file.

```
use coldstart_bootstrap::config::ConfigFile;
let file = ConfigFile::parse("coldstart.toml", "[coldstart]\nworker_threads = 2\n").unwrap();
assert_eq!(file.get("COLDSTART_WORKER_THREADS").map(|e| e.value.as_str()), Some("2"));
```
*/

use std::fmt;
use std::io;

use crate::plan::settings::OneLine;

/// Every variable the file may set: the plan's, then the telemetry settings.
/// Variables that choose the file (`COLDSTART_CONFIG`, `COLDSTART_ENV`), tokio's and
/// mimalloc's own, and the profile paths are read from the environment only.
pub const VARIABLES: &[&str] = &[
    // The plan.
    "COLDSTART_STRATEGY",
    "COLDSTART_FLAVOR",
    "COLDSTART_WORKER_THREADS",
    "COLDSTART_MAX_BLOCKING_THREADS",
    "COLDSTART_THREAD_STACK_SIZE",
    "COLDSTART_PREWARM",
    "COLDSTART_FIRST_RESPONSE_FALLBACK",
    "COLDSTART_DRAIN_TIMEOUT",
    "COLDSTART_LOG",
    // Logs (the `logs` feature).
    "COLDSTART_LOG_FORMAT",
    "COLDSTART_LOG_FILTER",
    // Metrics.
    "COLDSTART_METRICS_ADDR",
    "COLDSTART_METRICS_TLS_CERT",
    "COLDSTART_METRICS_TLS_KEY",
    "COLDSTART_METRICS_TLS_CLIENT_CA",
    "COLDSTART_METRICS_PUSH_URL",
    "COLDSTART_METRICS_PUSH_JOB",
    "COLDSTART_METRICS_PUSH_INTERVAL",
    "COLDSTART_METRICS_PUSH_GROUPING",
    // AWS Lambda (the `lambda` feature).
    "COLDSTART_LAMBDA_FLUSH_TIMEOUT",
    "COLDSTART_LAMBDA_EXTENSION",
    "COLDSTART_EMF_NAMESPACE",
    // The dynamic sampler.
    "COLDSTART_SAMPLER_K1",
    "COLDSTART_SAMPLER_K2",
    "COLDSTART_SAMPLER_FLOOR",
    "COLDSTART_SAMPLER_WINDOW",
    // OpenTelemetry.
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",
    "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
];

/// The largest configuration file read. A file of settings is a few KB; a path that
/// names a large file by mistake is refused rather than read into memory before
/// `main` has started its work.
const FILE_LIMIT: u64 = 1 << 20;

/// Variables coldstart reads from the environment only, not from the file nor through
/// `Builder::set` (a profile in code is the attribute's `profile` or
/// `Builder::init_profile`): the ones that choose the file, the profile's paths,
/// tokio's and `tracing`'s own. A file key or a `Builder::set` naming one is told so,
/// not that coldstart does not read it.
pub const ENVIRONMENT_ONLY: [&str; 7] = [
    "COLDSTART_CONFIG",
    "COLDSTART_ENV",
    "APP_ENV",
    "COLDSTART_PROFILE",
    "COLDSTART_PROFILE_OUT",
    "TOKIO_WORKER_THREADS",
    "RUST_LOG",
];

/// The two tables of the file and the prefix each stands for.
const TABLES: [(&str, &str); 2] = [("coldstart", "COLDSTART_"), ("otel", "OTEL_")];

/// `[table] key` for a variable, as the file spells it.
///
/// ```
/// assert_eq!(coldstart_bootstrap::config::file_key("OTEL_SERVICE_NAME"), "[otel] service_name");
/// ```
pub fn file_key(variable: &str) -> String {
    TABLES
        .iter()
        .find_map(|(table, prefix)| {
            let rest = variable.strip_prefix(prefix)?;
            Some(format!("[{table}] {}", rest.to_ascii_lowercase()))
        })
        .unwrap_or_else(|| variable.to_owned())
}

/// `raw` with any user info (`user:password@`) replaced, for messages. Up to the last
/// `@` anywhere: a password may hold a `/`, `?` or `#` as it is, and then where the
/// authority ends cannot be told (a path with an `@` is hidden too).
///
/// ```
/// use coldstart_bootstrap::config::without_user_info;
/// assert_eq!(without_user_info("http://ci:pa/ss@gw:9091"), "http://<not shown>@gw:9091");
/// ```
pub fn without_user_info(raw: &str) -> String {
    let (scheme, rest) = raw.split_once("://").unwrap_or(("", raw));
    match rest.rfind('@') {
        Some(at) => {
            let prefix = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{prefix}<not shown>@{}", &rest[at + 1..])
        }
        None => raw.to_owned(),
    }
}

/// `value` of `variable` as a message may show it: a headers value's pairs are
/// credentials (`authorization=...`), and a URL's user info is a password, its query
/// perhaps a key (`?api-key=...`).
///
/// ```
/// use coldstart_bootstrap::config::shown;
/// assert_eq!(shown("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t"), "<not shown>");
/// assert_eq!(shown("COLDSTART_METRICS_PUSH_URL", "http://u:p@gw"), "http://<not shown>@gw");
/// assert_eq!(
///     shown("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318/otlp?api-key=k"),
///     "https://c:4318/otlp?<not shown>"
/// );
/// assert_eq!(shown("COLDSTART_STRATEGY", "tiny"), "tiny");
/// ```
pub fn shown(variable: &str, value: &str) -> String {
    if variable.ends_with("_HEADERS") {
        "<not shown>".to_owned()
    } else if variable.ends_with("_ENDPOINT") || variable.ends_with("_URL") {
        let url = without_user_info(value);
        match url.split_once('?') {
            Some((before, _)) => format!("{before}?<not shown>"),
            None => url,
        }
    } else {
        value.to_owned()
    }
}

/// One setting the file gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The variable it sets, such as `COLDSTART_WORKER_THREADS`.
    pub variable: &'static str,
    /// The value as the variable would hold it (`2`, `true`, `checkout`).
    pub value: String,
    /// Its line in the file, from 1.
    pub line: u32,
}

/// A configuration file, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The path it was read from, as given.
    pub path: String,
    /// Its settings, in file order.
    pub entries: Vec<Entry>,
}

/// A configuration file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub path: String,
    /// The line, when the problem is on one.
    pub line: Option<u32>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message quotes the file, which may hold a lone carriage return or an
        // escape sequence: shown escaped, so the line stays one and the terminal's.
        let (path, message) = (OneLine(&self.path), OneLine(&self.message));
        match self.line {
            Some(line) => write!(f, "{path} line {line}: {message}"),
            None => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for FileError {}

/// The variable that chooses the configuration file, and its value without the blanks
/// around it: `COLDSTART_CONFIG` (a path, or `off`), else `COLDSTART_ENV`, else
/// `APP_ENV` (an environment name); `None` where none is set (`coldstart.toml`).
///
/// ```
/// use coldstart_bootstrap::config::file_chosen_by;
/// let vars = |k: &str| match k {
///     "APP_ENV" => Some("prod".to_owned()),
///     "COLDSTART_ENV" => Some(" staging ".to_owned()),
///     _ => None,
/// };
/// assert_eq!(file_chosen_by(vars), Some(("COLDSTART_ENV", "staging".to_owned())));
/// assert_eq!(file_chosen_by(|_| None), None);
/// ```
pub fn file_chosen_by(var: impl Fn(&str) -> Option<String>) -> Option<(&'static str, String)> {
    // Blanks around a value are not part of it, as for every setting (a `.env` line's
    // trailing space would otherwise name `config/prod .toml`).
    ["COLDSTART_CONFIG", "COLDSTART_ENV", "APP_ENV"]
        .into_iter()
        .find_map(|key| {
            var(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(|v| (key, v))
        })
}

/// Which file the environment points at, and whether it must exist.
///
/// ```
/// use coldstart_bootstrap::config::which_file;
/// assert_eq!(which_file(|_| None), Ok(Some(("coldstart.toml".to_owned(), false))));
/// assert_eq!(
///     which_file(|k| (k == "APP_ENV").then(|| "staging".to_owned())),
///     Ok(Some(("config/staging.toml".to_owned(), false)))
/// );
/// assert_eq!(which_file(|k| (k == "COLDSTART_CONFIG").then(|| "off".to_owned())), Ok(None));
/// ```
///
/// # Errors
///
/// An environment name that cannot name a file in `config/` (`../x`, `a b`): said,
/// since reading no file at all would drop every setting the file holds.
pub fn which_file(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<(String, bool)>, FileError> {
    file_of(file_chosen_by(var))
}

/// [`which_file`] for what [`file_chosen_by`] found.
fn file_of(chosen: Option<(&'static str, String)>) -> Result<Option<(String, bool)>, FileError> {
    let named = match chosen {
        Some(("COLDSTART_CONFIG", path)) => return Ok((path != "off").then_some((path, true))),
        named => named,
    };
    Ok(Some(match named {
        Some((_, name)) if environment_name(&name) => (format!("config/{name}.toml"), false),
        Some((variable, name)) => {
            return Err(FileError {
                path: "config/<env>.toml".to_owned(),
                line: None,
                message: format!(
                    "{variable}=`{name}` cannot name it: an environment name has letters, digits, `-`, `_` and `.`, not first (COLDSTART_CONFIG names any file)"
                ),
            });
        }
        None => ("coldstart.toml".to_owned(), false),
    }))
}

/// Whether `name` can name a file in `config/` and no other: no `/`, nothing hidden,
/// no `..`.
fn environment_name(name: &str) -> bool {
    !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl ConfigFile {
    /// Reads the file the environment points at; `Ok(None)` when there is none.
    ///
    /// # Errors
    ///
    /// The file `COLDSTART_CONFIG` names is missing; a file exists but cannot be read,
    /// is not a regular file (a FIFO is refused without waiting for a writer), is
    /// larger than 1 MiB, or is not valid (see the module docs).
    pub fn find(var: impl Fn(&str) -> Option<String>) -> Result<Option<ConfigFile>, FileError> {
        // The variables read once: what chose the file, then the file.
        let chosen_by = file_chosen_by(var);
        // `config/<env>.toml`, and the variable that named the environment.
        let by_name = match &chosen_by {
            Some((variable @ ("APP_ENV" | "COLDSTART_ENV"), name)) => {
                Some((*variable, name.clone()))
            }
            _ => None,
        };
        let Some((path, required)) = file_of(chosen_by)? else {
            return Ok(None);
        };
        match crate::file::read_named_text(path.as_ref(), FILE_LIMIT) {
            Ok(text) => ConfigFile::parse(&path, &text).map(Some).map_err(|mut e| {
                // `APP_ENV` is set for other programs too, whose own file this may be
                // (`COLDSTART_ENV` names coldstart's).
                if let Some((variable @ "APP_ENV", name)) = by_name {
                    e.message.push_str(&format!(
                        " ({variable}=`{name}` chose this file; if it is another program's, set COLDSTART_CONFIG to coldstart's file, or to `off`)"
                    ));
                }
                e
            }),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(FileError {
                path,
                line: None,
                message: e.to_string(),
            }),
            // `config` being a file, not a directory, is a missing `config/<env>.toml`.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) && !required =>
            {
                // `coldstart.toml`, there but not read, would be a surprise unsaid, and
                // so would a file `COLDSTART_ENV`, set for coldstart alone, names in
                // vain (`prodution`); said once a process, however often it is sought.
                static SAID: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if let Some((variable, name)) = by_name
                    && !SAID.load(std::sync::atomic::Ordering::Relaxed)
                {
                    let beside = std::path::Path::new("coldstart.toml").is_file();
                    if (beside || variable == "COLDSTART_ENV")
                        && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed)
                    {
                        let unread = if beside {
                            "; coldstart.toml, which is there, is read only when no environment is named"
                        } else {
                            ""
                        };
                        crate::say!(
                            "coldstart: {path} not found ({variable}=`{name}` chose it), so no file is read{unread}"
                        );
                    }
                }
                Ok(None)
            }
            Err(e) => Err(FileError {
                message: format!("cannot be read ({e}); COLDSTART_CONFIG=off reads no file"),
                path,
                line: None,
            }),
        }
    }

    /// Parses a file's text.
    ///
    /// # Errors
    ///
    /// The first line that is not valid, named with what the file may contain.
    pub fn parse(path: &str, text: &str) -> Result<ConfigFile, FileError> {
        // Some editors start a UTF-8 file with a byte order mark; TOML allows it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut table: Option<&str> = None;
        let mut seen_tables: Vec<&str> = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let fail = |message: String| FileError {
                path: path.to_owned(),
                line: Some(line),
                message,
            };
            let content = strip_comment(raw).trim();
            if content.is_empty() {
                continue;
            }
            if let Some(header) = content.strip_prefix('[') {
                // A table's name may be quoted, as a key may (`["otel"]`).
                let name = header
                    .strip_suffix(']')
                    .map(|n| unquote_key(n.trim()))
                    .filter(|n| TABLES.iter().any(|(t, _)| t == n))
                    .ok_or_else(|| {
                        fail(match header.split_once(']') {
                            // `[coldstart] key = value`: the setting is not quoted, it
                            // may be a password.
                            Some((name, rest)) if !rest.trim().is_empty() => format!(
                                "{} has more after it on its line{}; put a table's name on a line of its own, and each setting on one of its own",
                                match opening(name) {
                                    Some(name) => format!("`[{name}]`"),
                                    None => "a table's name (not shown: it may hold a secret)".to_owned(),
                                },
                                if rest.contains('\r') {
                                    " (a carriage return, `\\r`, with no line feed after it ends no line)"
                                } else {
                                    ""
                                }
                            ),
                            _ => match opening(content) {
                                Some(table) => format!(
                                    "`{table}` is not a table coldstart reads; the tables are [coldstart] and [otel]"
                                ),
                                None => "its table is not one coldstart reads (the line is not shown: it may hold a secret); the tables are [coldstart] and [otel]".to_owned(),
                            },
                        })
                    })?;
                if seen_tables.contains(&name) {
                    return Err(fail(format!("[{name}] appears twice")));
                }
                seen_tables.push(name);
                table = Some(name);
                continue;
            }
            let (key, value) = content.split_once('=').ok_or_else(|| {
                fail(match opening(content) {
                    Some(start) => format!(
                        "expected `key = value` or a [table], got a line that begins `{start}`"
                    ),
                    None => "expected `key = value` or a [table], got neither (the line is not shown: it may hold a secret)".to_owned(),
                })
            })?;
            let written = key.trim();
            let key = unquote_key(written);
            // A key is quoted only where it looks like one: a line of a pasted secret
            // (base64 ends in `=`) reads as a key too. Made only for an error: not
            // for every line of a file that is read at start-up.
            let quoted = || match opening(written) {
                Some(key) => format!("`{key}`"),
                None => "a key (not shown: it may hold a secret)".to_owned(),
            };
            if key == written && key.contains('.') {
                return Err(fail(format!(
                    "{} is a dotted key, which coldstart's files do not use; put the setting under its table, [coldstart] or [otel]",
                    quoted()
                )));
            }
            let Some(table) = table else {
                return Err(fail(format!(
                    "{} is outside a table; put it under [coldstart] or [otel]",
                    quoted()
                )));
            };
            let variable = variable_of(table, key).ok_or_else(|| {
                let prefix = prefix_of(table).unwrap_or_default();
                let variable = format!("{prefix}{}", key.to_ascii_uppercase());
                let lowercase = !key.contains(char::is_uppercase);
                fail(if lowercase && ENVIRONMENT_ONLY.contains(&variable.as_str()) {
                    format!(
                        "`[{table}] {key}` is read from the environment only, as {variable} (the README's Settings section)"
                    )
                } else {
                    match opening(written) {
                        Some(key) => format!(
                            "`[{table}] {key}` is not a setting coldstart reads (the README's Settings and Telemetry sections list them)"
                        ),
                        None => format!(
                            "[{table}] has a key that is not a setting coldstart reads (not shown: it may hold a secret; settings are lowercase, and the README's Settings and Telemetry sections list them)"
                        ),
                    }
                })
            })?;
            if let Some(first) = entries.iter().find(|e| e.variable == variable) {
                return Err(fail(format!(
                    "`{key}` is given twice (first on line {})",
                    first.line
                )));
            }
            let value = parse_value(value.trim()).map_err(|why| {
                fail(format!(
                    "the value of `[{table}] {key}`, `{}`, {why}; use a string, a number or true/false",
                    shown(variable, value.trim())
                ))
            })?;
            entries.push(Entry {
                variable,
                value,
                line,
            });
        }
        Ok(ConfigFile {
            path: path.to_owned(),
            entries,
        })
    }

    /// The entry that sets `variable`, if any.
    pub fn get(&self, variable: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.variable == variable)
    }
}

/// The start of a line that could not be read, for its message, when it looks like a
/// key or a table's name (lower-case letters, digits, `_`, `-`, `.`, brackets and
/// quotes, at most 32 of them, and not 16 or more hex digits alone): up to its first
/// blank, `:` or `=`. Anything else is
/// not quoted at all: the whole line could hold a secret (`url:
/// http://user:password@host`, an access key pasted alone on a line) or a megabyte.
fn opening(content: &str) -> Option<String> {
    let word = content
        .split([' ', '\t', ':', '='])
        .next()
        .unwrap_or(content);
    // Sixteen hex digits or more are a token's look (an API key), not a key's.
    let hex = word.len() >= 16 && word.bytes().all(|b| b.is_ascii_hexdigit());
    let key_like = word.len() <= 32
        && !hex
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.[]\"'".contains(&b));
    key_like.then(|| {
        if word.len() < content.len() {
            format!("{word}...")
        } else {
            word.to_owned()
        }
    })
}

/// The prefix of the variables `[table]` holds (`COLDSTART_`, `OTEL_`).
fn prefix_of(table: &str) -> Option<&'static str> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, p)| *p)
}

/// The variable `[table] key` stands for, if coldstart reads it.
fn variable_of(table: &str, key: &str) -> Option<&'static str> {
    let prefix = prefix_of(table)?;
    VARIABLES.iter().copied().find(|v| {
        v.strip_prefix(prefix)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(key) && !key.contains(char::is_uppercase))
    })
}

/// A key without the quotes TOML allows around it (`"strategy"`, `'strategy'`).
fn unquote_key(key: &str) -> &str {
    ['"', '\'']
        .iter()
        .find_map(|q| key.strip_prefix(*q)?.strip_suffix(*q))
        .filter(|inner| !inner.contains(['"', '\'', '\\']))
        .unwrap_or(key)
}

/// The line without a `#` comment (a `#` inside a quoted string is kept).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..i],
            _ => {}
        }
        escaped = false;
    }
    line
}

/// A TOML string, number or boolean, as the text a variable would hold.
fn parse_value(v: &str) -> Result<String, &'static str> {
    if v.starts_with("\"\"\"") || v.starts_with("'''") {
        return Err(
            "is a multi-line string, which coldstart's files do not use (a setting fits on its line)",
        );
    }
    if let Some(inner) = v.strip_prefix('\'') {
        if inner.find('\'').is_some_and(|at| at + 1 < inner.len()) {
            return Err("has text after its literal string's closing `'`");
        }
        return inner
            .strip_suffix('\'')
            .ok_or("is a literal string without its closing `'`")
            .and_then(|s| {
                if s.chars().any(forbidden_in_strings) {
                    Err(CONTROL)
                } else {
                    Ok(s.to_owned())
                }
            });
    }
    if let Some(inner) = v.strip_prefix('"') {
        return basic_string(inner);
    }
    match v {
        "true" | "false" => return Ok(v.to_owned()),
        _ => {}
    }
    if v.starts_with('[') || v.starts_with('{') {
        return Err("is an array or a table");
    }
    // Hexadecimal, octal and binary whole numbers, as the decimal a variable holds.
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = v.strip_prefix(prefix) {
            if !digit_run(digits, radix) {
                return Err("is not a whole number in the base its prefix names");
            }
            // TOML's integers are 64-bit signed.
            return i64::from_str_radix(&digits.replace('_', ""), radix)
                .map(|n| n.to_string())
                .map_err(|_| "is outside TOML's integers (64-bit signed)");
        }
    }
    if v.is_empty() {
        return Err("is missing: nothing follows the `=`");
    }
    if matches!(v.trim_start_matches(['+', '-']), "inf" | "nan") {
        return Err("is TOML's infinity or not-a-number, which no setting takes");
    }
    if !v.starts_with(|c: char| c.is_ascii_digit() || "+-._".contains(c)) {
        return Err("is not one TOML may hold here (a bare word needs quotes)");
    }
    // `10s`, `2M`, `0.0.0.0:9464`: text that begins with a digit, not a number.
    let signed_prefix = ["0x", "0o", "0b"]
        .iter()
        .any(|p| v.trim_start_matches(['+', '-']).starts_with(p));
    if !signed_prefix && v.contains(|c: char| !c.is_ascii_digit() && !"+-._eE".contains(c)) {
        return Err(
            "is text that needs quotes around it (`\"10s\"`, `\"2M\"`, `\"0.0.0.0:9464\"`)",
        );
    }
    if !toml_number(v) {
        return Err(
            "is not a TOML number (`_` only between digits, no leading zero, digits on both sides of `.`)",
        );
    }
    let digits = v.replace('_', "");
    let integer = !digits.contains(['.', 'e', 'E']);
    if integer && digits.parse::<i64>().is_err() {
        return Err("is outside TOML's integers (64-bit signed)");
    }
    Ok(digits.strip_prefix('+').unwrap_or(&digits).to_owned())
}

/// Whether `s` is one or more digits of `radix`, a `_` only between two of them.
fn digit_run(s: &str, radix: u32) -> bool {
    let digit = |c: char| c.is_digit(radix);
    s.starts_with(digit)
        && s.ends_with(digit)
        && !s.contains("__")
        && s.chars().all(|c| c == '_' || digit(c))
}

/// Whether `s` is a decimal integer or a float as TOML 1.0 spells them (no `inf` or
/// `nan`, which no setting takes): `-12`, `1_000`, `0.5`, `1e3`, `6.02E+23`; not
/// `007`, `1__0`, `5.`, `.5` or `1e`.
fn toml_number(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int, fraction) = match mantissa.split_once('.') {
        Some((int, fraction)) => (int, Some(fraction)),
        None => (mantissa, None),
    };
    let unsigned = int.strip_prefix(['+', '-']).unwrap_or(int);
    let int_ok = digit_run(unsigned, 10) && (unsigned == "0" || !unsigned.starts_with('0'));
    let exponent_ok =
        exponent.is_none_or(|e| digit_run(e.strip_prefix(['+', '-']).unwrap_or(e), 10));
    int_ok && fraction.is_none_or(|f| digit_run(f, 10)) && exponent_ok
}

/// The rest of a `"..."` string after its opening quote, with escapes resolved.
fn basic_string(rest: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                return if chars.as_str().trim().is_empty() {
                    Ok(out)
                } else {
                    Err("has text after its closing quote")
                };
            }
            '\\' => out.push(match chars.next() {
                Some('"') => '"',
                Some('\\') => '\\',
                Some('n') => '\n',
                Some('t') => '\t',
                Some('r') => '\r',
                Some('b') => '\u{8}',
                Some('f') => '\u{c}',
                Some(u @ ('u' | 'U')) => {
                    let len = if u == 'u' { 4 } else { 8 };
                    let hex: String = chars.by_ref().take(len).collect();
                    // Hex digits only: `from_str_radix` would take a sign (`\u+041`).
                    u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == len && hex.chars().all(|c| c.is_ascii_hexdigit()))
                        .and_then(char::from_u32)
                        .ok_or("has a bad \\u or \\U escape")?
                }
                _ => return Err("has an escape TOML does not define"),
            }),
            c if forbidden_in_strings(c) => return Err(CONTROL),
            c => out.push(c),
        }
    }
    Err("is a string without its closing `\"`")
}

const CONTROL: &str =
    "holds a control character other than tab, which a TOML string may only hold escaped";

/// The characters TOML 1.0 allows in no string as they are: the control characters
/// but tab (U+0000 to U+0008, U+000A to U+001F, U+007F).
fn forbidden_in_strings(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<ConfigFile, FileError> {
        ConfigFile::parse("coldstart.toml", text)
    }

    #[test]
    fn tables_keys_and_values() {
        let file = parse(
            "# the checkout service\n\
             [coldstart]\n\
             worker_threads = 2   # two cores\n\
             metrics_addr = \"0.0.0.0:9464\"\n\
             prewarm = false\n\
             \n\
             [otel]\n\
             service_name = 'checkout # east'\n\
             traces_sampler_arg = 0.25\n\
             exporter_otlp_headers = \"authorization=Bearer \\\"x\\\"\"\n\
             bsp_max_queue_size = 4_096\n",
        )
        .unwrap();
        let values: Vec<_> = file
            .entries
            .iter()
            .map(|e| (e.variable, e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            values,
            [
                ("COLDSTART_WORKER_THREADS", "2", 3),
                ("COLDSTART_METRICS_ADDR", "0.0.0.0:9464", 4),
                ("COLDSTART_PREWARM", "false", 5),
                ("OTEL_SERVICE_NAME", "checkout # east", 8),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25", 9),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "authorization=Bearer \"x\"",
                    10
                ),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "4096", 11),
            ]
        );
    }

    #[test]
    fn every_mistake_names_the_line_and_what_is_accepted() {
        let cases = [
            (
                "worker_threads = 2",
                "line 1: `worker_threads` is outside a table",
            ),
            (
                "[tokio]",
                "line 1: `[tokio]` is not a table coldstart reads",
            ),
            (
                "[coldstart]\nworker_thread = 2",
                "line 2: `[coldstart] worker_thread` is not a setting",
            ),
            ("[coldstart]\nWORKER_THREADS = 2", "is not a setting"),
            ("[otel]\nconfig = 'x'", "is not a setting"),
            ("[coldstart]\nstrategy = minimal", "bare word needs quotes"),
            ("[coldstart]\nstrategy = \"minimal", "without its closing"),
            (
                "[otel]\npropagators = [\"tracecontext\"]",
                "is an array or a table",
            ),
            (
                "[coldstart]\nprewarm = true\nprewarm = false",
                "line 3: `prewarm` is given twice (first on line 2)",
            ),
            ("[otel]\n[otel]", "line 2: [otel] appears twice"),
            ("[coldstart]\nlog", "line 2: expected `key = value`"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?} gave {err:?}");
            assert!(err.starts_with("coldstart.toml line "), "{err}");
        }
    }

    /// What TOML allows and a hand-written file may hold: a byte order mark, quoted
    /// keys and table names, every TOML 1.0 escape, whole numbers in other bases.
    #[test]
    fn toml_forms_beyond_the_plain_ones() {
        let file = parse(
            "\u{feff}[coldstart]\n\
             \"strategy\" = 'minimal'\n\
             worker_threads = 0x2\n\
             max_blocking_threads = 0o10\n\
             thread_stack_size = 0b1_0000_0000_0000_0000\n\
             [ \"otel\" ]\n\
             service_name = \"a\\bb\\fc\\U0001F600\"\n",
        )
        .unwrap();
        let values: Vec<_> = file
            .entries
            .iter()
            .map(|e| (e.variable, e.value.as_str()))
            .collect();
        assert_eq!(
            values,
            [
                ("COLDSTART_STRATEGY", "minimal"),
                ("COLDSTART_WORKER_THREADS", "2"),
                ("COLDSTART_MAX_BLOCKING_THREADS", "8"),
                ("COLDSTART_THREAD_STACK_SIZE", "65536"),
                ("OTEL_SERVICE_NAME", "a\u{8}b\u{c}c\u{1F600}"),
            ]
        );
        // What coldstart's files do not use is named as such, not as a mistake.
        for (text, expected) in [
            ("coldstart.strategy = 'minimal'", "is a dotted key"),
            (
                "[otel]\nservice_name = \"\"\"x\"\"\"",
                "is a multi-line string",
            ),
            (
                "[coldstart]\nworker_threads = 0xZZ",
                "in the base its prefix names",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?} gave {err:?}");
        }
    }

    /// A control character in a string is refused, as TOML 1.0 says (tab and escapes
    /// are fine), and an error line never carries one: a lone carriage return, which
    /// `lines()` leaves inside a line, would overwrite the message on a terminal.
    /// The value and its table are named.
    #[test]
    fn control_characters_are_refused_and_never_printed() {
        for text in [
            "[otel]\nservice_name = \"a\u{1b}[2Jb\"",
            "[otel]\nservice_name = 'a\u{0}b'",
            "[otel]\nservice_name = \"a\u{7f}\"",
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("control character"), "{err:?}");
            assert!(!err.chars().any(|c| c.is_control()), "{err:?}");
        }
        let ok = parse("[otel]\nservice_name = \"a\tb\\u001b\"").unwrap();
        assert_eq!(ok.entries[0].value, "a\tb\u{1b}");
        let err = parse("[coldstart]\rworker_threads = 2")
            .unwrap_err()
            .to_string();
        assert!(!err.chars().any(|c| c.is_control()), "{err:?}");
        assert!(err.contains("\\r"), "{err:?}");
        let err = parse("[coldstart]\nstrategy = minimal")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`[coldstart] strategy`, `minimal`,"), "{err}");
        // Durations, sizes and addresses written without quotes are told to have them,
        // not how TOML spells numbers; nothing and infinity are named as such.
        for (value, said) in [
            ("10s", "`10s`, is text that needs quotes"),
            ("2M", "`2M`, is text that needs quotes"),
            ("0.0.0.0:9464", "`0.0.0.0:9464`, is text that needs quotes"),
            ("", "``, is missing: nothing follows the `=`"),
            ("-inf", "`-inf`, is TOML's infinity"),
            ("nan", "`nan`, is TOML's infinity or not-a-number"),
            ("'10s' x", "has text after its literal string's closing `'`"),
            ("'it''s'", "has text after its literal string's closing `'`"),
            ("'10s", "is a literal string without its closing `'`"),
            ("1.5.2", "`1.5.2`, is not a TOML number"),
        ] {
            let err = parse(&format!("[coldstart]\ndrain_timeout = {value}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(said), "{value}: {err}");
        }
        // Secrets are not named with the value: a headers value, a URL's password.
        let err = parse("[otel]\nexporter_otlp_headers = authorization=Bearer%20s3cret")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`<not shown>`") && !err.contains("s3cret"),
            "{err}"
        );
        let err = parse("[coldstart]\nmetrics_push_url = http://ci:s3cret@gw")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http://<not shown>@gw") && !err.contains("s3cret"),
            "{err}"
        );
        // Nor in a line that could not be read at all: only its start is quoted.
        for (text, said) in [
            (
                "[coldstart]\nmetrics_push_url: \"http://ci:s3cret@gw:9091\"",
                "a line that begins `metrics_push_url...`",
            ),
            (
                "[coldstart] metrics_push_url = \"http://ci:s3cret@gw\"",
                "`[coldstart]` has more after it on its line",
            ),
            (
                "[otel] exporter_otlp_headers = \"authorization=s3cret\"",
                "`[otel]` has more after it on its line",
            ),
            (
                "[coldstart]\nhttp://ci:s3cret@gw",
                "a line that begins `http...`",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(said) && !err.contains("s3cret"), "{err}");
        }
        // A line that looks like no key is not quoted at all: an access key pasted
        // alone, a megabyte of text.
        for line in [
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
            "0123456789abcdef0123456789abcdef".to_owned(),
            "x".repeat(100_000),
        ] {
            let err = parse(&format!("[coldstart]\n{line}"))
                .unwrap_err()
                .to_string();
            assert!(err.len() < 300, "{err}");
            assert!(err.contains("got neither (the line is not shown"), "{err}");
            let err = parse(&format!("[{line}]")).unwrap_err().to_string();
            assert!(
                err.contains("its table is not one coldstart reads"),
                "{err}"
            );
            assert!(!err.contains(&line[..20]), "{err}");
            // Nor with `=` after it (base64's padding), as a key outside a table, a
            // dotted key or one that is not a setting, nor as a table's name with
            // more after it on its line.
            for text in [
                format!("[coldstart]\n{line}=="),
                format!("{line} = 1"),
                format!("[coldstart]\n{line}.x = 1"),
                format!("[{line}] x = 1"),
            ] {
                let err = parse(&text).unwrap_err().to_string();
                assert!(err.len() < 300, "{err}");
                assert!(err.contains("not shown: it may hold a secret"), "{err}");
                assert!(!err.contains(&line[..20]), "{err}");
            }
        }
        let err = parse("[database]").unwrap_err().to_string();
        assert!(
            err.contains("`[database]` is not a table coldstart reads"),
            "{err}"
        );
    }

    /// A key for a variable coldstart reads from the environment only is said to be
    /// one; the README lists it, so "not a setting" contradicted it.
    #[test]
    fn a_setting_read_from_the_environment_only_is_said_to_be_one() {
        let err = parse("[coldstart]\nprofile = \"a.profile\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "`[coldstart] profile` is read from the environment only, as COLDSTART_PROFILE"
            ),
            "{err}"
        );
        let err = parse("[coldstart]\nthreads = 2").unwrap_err().to_string();
        assert!(err.contains("is not a setting coldstart reads"), "{err}");
    }

    /// Numbers TOML refuses are refused, as another TOML reader of the same file
    /// would; those it takes keep their value.
    #[test]
    fn numbers_as_toml_spells_them() {
        let value = |v: &str| {
            parse(&format!("[otel]\nbsp_max_queue_size = {v}"))
                .map(|f| f.entries[0].value.clone())
                .map_err(|e| e.to_string())
        };
        for (v, expected) in [
            ("2048", "2048"),
            ("+2_048", "2048"),
            ("0", "0"),
            ("-1", "-1"),
            ("0.5", "0.5"),
            ("1e3", "1e3"),
            ("6.02E+2_3", "6.02E+23"),
            ("0x1_F", "31"),
        ] {
            assert_eq!(value(v).as_deref(), Ok(expected), "{v}");
        }
        for v in [
            "007", "0_1", "1__0", "1_", "_1", "5.", ".5", "1e", "1e_3", "1._5", "+0x10", "0x",
            "0x_1", "1.2.3", "--1", "1-2", "-", "+", "1e+", "-e5",
        ] {
            let err = value(v).unwrap_err();
            assert!(
                err.contains("TOML number") || err.contains("base its prefix"),
                "{v}: {err}"
            );
        }
        // Integers are 64-bit signed in TOML; escapes take hex digits only.
        // A hexadecimal number too large was "not a whole number in the base".
        for v in [
            "99999999999999999999",
            "0xFFFFFFFFFFFFFFFF",
            "0o7777777777777777777777",
        ] {
            let err = value(v).unwrap_err();
            assert!(err.contains("64-bit signed"), "{v}: {err}");
        }
        assert_eq!(
            value("9223372036854775807").as_deref(),
            Ok("9223372036854775807")
        );
        let escape = parse("[otel]\nservice_name = \"\\u+041\"").unwrap_err();
        assert!(
            escape.to_string().contains("bad \\u or \\U escape"),
            "{escape}"
        );
    }

    #[test]
    fn the_environment_chooses_the_file() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            which_file(vars(&[("COLDSTART_ENV", "prod"), ("APP_ENV", "dev")])),
            Ok(Some(("config/prod.toml".to_owned(), false)))
        );
        assert_eq!(
            which_file(vars(&[
                ("COLDSTART_CONFIG", "/etc/svc.toml"),
                ("COLDSTART_ENV", "prod")
            ])),
            Ok(Some(("/etc/svc.toml".to_owned(), true)))
        );
        assert_eq!(
            which_file(vars(&[("APP_ENV", "prod.eu-1")])),
            Ok(Some(("config/prod.eu-1.toml".to_owned(), false)))
        );
        // Blanks around a name or a path are not part of it, as for every setting.
        assert_eq!(
            which_file(vars(&[("COLDSTART_ENV", "prod ")])),
            Ok(Some(("config/prod.toml".to_owned(), false)))
        );
        assert_eq!(
            which_file(vars(&[("COLDSTART_CONFIG", " /etc/svc.toml\t")])),
            Ok(Some(("/etc/svc.toml".to_owned(), true)))
        );
        assert_eq!(which_file(vars(&[("COLDSTART_CONFIG", " off ")])), Ok(None));
        // A name that cannot name a file there is said: reading no file would drop
        // every setting in it without a word.
        for bad in ["../../etc/passwd", "prod eu", ".hidden", "a/b"] {
            let err = which_file(|k| (k == "APP_ENV").then(|| bad.to_owned())).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!(
                    "config/<env>.toml: APP_ENV=`{bad}` cannot name it"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn a_named_file_must_exist_and_others_may_be_missing() {
        let missing = "/nonexistent/coldstart-test.toml";
        let err = ConfigFile::find(|k| (k == "COLDSTART_CONFIG").then(|| missing.to_owned()))
            .unwrap_err();
        assert!(err.to_string().starts_with(missing), "{err}");
        let none = ConfigFile::find(|k| (k == "COLDSTART_ENV").then(|| "no-such-env".to_owned()));
        assert_eq!(none, Ok(None));
    }

    /// A path that is not a regular file is refused by name, and not read: a FIFO
    /// with no writer would block the open forever, `/dev/zero` would fill memory.
    #[test]
    fn a_file_that_is_not_a_regular_file_is_refused_without_reading_it() {
        let named = |path: String| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                tx.send(ConfigFile::find(|k| {
                    (k == "COLDSTART_CONFIG").then(|| path.clone())
                }))
            });
            rx.recv_timeout(std::time::Duration::from_secs(20))
                .expect("the configuration file's read did not return")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            named("/dev/zero".to_owned()),
            "/dev/zero: cannot be read (is a character device, not a regular file); \
             COLDSTART_CONFIG=off reads no file"
        );
        let dir = std::env::temp_dir().join(format!("coldstart-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("coldstart.toml");
        coldstart_test_support::fifo(&fifo);
        assert_eq!(
            named(fifo.display().to_string()),
            format!(
                "{}: cannot be read (is a FIFO, not a regular file); \
                 COLDSTART_CONFIG=off reads no file",
                fifo.display()
            )
        );
        let large = dir.join("large.toml");
        std::fs::write(&large, vec![b'#'; (1 << 20) + 1]).unwrap();
        assert_eq!(
            named(large.display().to_string()),
            format!(
                "{}: cannot be read (is larger than 1 MiB, more than such a file holds); \
                 COLDSTART_CONFIG=off reads no file",
                large.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_variable_has_a_file_key_that_maps_back() {
        for variable in VARIABLES {
            let key = file_key(variable);
            let (table, key) = key[1..].split_once("] ").unwrap();
            assert_eq!(variable_of(table, key), Some(*variable));
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC*(\n\\PC*){0,4}") {
            let _ = parse(&text);
        }

        /// Values of any characters, control ones and carriage returns among them,
        /// under a table and a key coldstart reads, so that the value's parser is
        /// reached (random text mostly fails at its first line).
        #[test]
        fn values_never_panic(value in "[\\x00-\\x7f\\PC]{0,40}") {
            let _ = parse(&format!("[coldstart]\ndrain_timeout = {value}"));
            let _ = parse(&format!("[otel]\nservice_name = {value}\n"));
        }

        #[test]
        fn strings_round_trip(s in "[^\"\\\\\\x00-\\x08\\x0a-\\x1f\\x7f]*") {
            let file = parse(&format!("[otel]\nservice_name = \"{s}\"")).unwrap();
            prop_assert_eq!(&file.entries[0].value, &s);
        }
    }
}

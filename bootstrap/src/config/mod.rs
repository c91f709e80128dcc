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

mod parse;
#[cfg(test)]
mod tests;

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
    /// The entry that sets `variable`, if any.
    pub fn get(&self, variable: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.variable == variable)
    }
}

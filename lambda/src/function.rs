/*!
The function as Lambda describes it to the process: the variables the service sets,
read once and checked, so that a missing or odd one is a clear error instead of the
panic `lambda_runtime` would give.

Nothing here opens a file or a socket.
*/

use std::fmt;
use std::sync::OnceLock;

/// The Runtime API's address from `AWS_LAMBDA_RUNTIME_API`: `host:port` as the
/// service gives it, or a URL with a path as emulators do
/// (`http://127.0.0.1:9000/.rt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeApi {
    /// `host:port`.
    pub authority: String,
    /// The path every Runtime API path goes under: empty, or `/.rt` and the like,
    /// without a trailing slash.
    pub base_path: String,
}

impl RuntimeApi {
    /// Parses the variable's value.
    ///
    /// ```
    /// use coldstart_lambda::RuntimeApi;
    /// let api = RuntimeApi::parse("127.0.0.1:9001").unwrap();
    /// assert_eq!(api.url("/2018-06-01/runtime/invocation/next"), "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next");
    /// let emulator = RuntimeApi::parse("http://127.0.0.1:9000/.rt").unwrap();
    /// assert_eq!(emulator.path("/2018-06-01/runtime/init/error"), "/.rt/2018-06-01/runtime/init/error");
    /// assert!(RuntimeApi::parse("https://example.com").is_err());
    /// // lambda_runtime cannot use a path without the scheme.
    /// assert_eq!(
    ///     RuntimeApi::parse("127.0.0.1:9001/").unwrap_err(),
    ///     "a path after `host:port` needs the URL form, http://127.0.0.1:9001/"
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// A message saying what is accepted, for an empty value, a scheme other than
    /// `http`, a value without a host and port, or one with spaces around it
    /// (lambda_runtime reads the variable as it is, and cannot use such a value).
    pub fn parse(value: &str) -> Result<RuntimeApi, String> {
        if value.trim() != value {
            return Err("expected `host:port` with no spaces around it".to_owned());
        }
        let rest = match value.split_once("://") {
            None => value,
            // A URL's scheme is case-insensitive (RFC 3986), as `http::Uri` reads it.
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "the Runtime API is plain HTTP: `{scheme}://` is not accepted"
                ));
            }
        };
        // As `http::Uri` splits a URL, which lambda_runtime uses: the authority ends at
        // the path, the query or the fragment; the path at the query or fragment.
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        // User info is not part of where to connect (`u@host:9001`).
        let authority = authority.rsplit_once('@').map_or(authority, |(_, at)| at);
        let port_ok = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if port_ok && !path.is_empty() && rest.len() == value.len() {
            return Err(format!(
                "a path after `host:port` needs the URL form, http://{value}"
            ));
        }
        // lambda_runtime turns the value, as it is, into a URI and panics where it is
        // not one (`::1:9001`, a space or a `%` in the host); and the address after
        // any user info must be one too, as coldstart connects to it (`[@]:9` is a
        // URI whose user info is `[`, leaving `]:9`).
        let uri_ok = value.parse::<http::Uri>().is_ok()
            && format!("http://{authority}/").parse::<http::Uri>().is_ok();
        if !port_ok || !uri_ok {
            return Err(
                "expected `host:port` (an IPv6 host in brackets), or an http:// URL with a port"
                    .to_owned(),
            );
        }
        Ok(RuntimeApi {
            authority: authority.to_owned(),
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// `path` under the base path.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    /// `error`, from an exchange with the API, naming the address and the variable
    /// that gave it (a wrong emulator address is the usual cause).
    pub(crate) fn failed(&self, error: impl std::fmt::Display) -> String {
        format!("AWS_LAMBDA_RUNTIME_API={}: {error}", self.authority)
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.authority, self.path(path))
    }
}

/// The function this process runs, from the variables Lambda sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub version: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB.
    pub memory_mb: u32,
    /// `AWS_REGION`, when set.
    pub region: Option<String>,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`: the execution environment (`faas.instance`).
    pub instance: Option<String>,
    /// `AWS_LAMBDA_RUNTIME_API`.
    pub runtime_api: RuntimeApi,
    /// Whether `AWS_LAMBDA_INITIALIZATION_TYPE` is set to other than `on-demand`
    /// (`provisioned-concurrency`, `snap-start`, `lambda-managed-instances`): the
    /// environment was made ready ahead of any request, so no invocation waited for
    /// its start, and none is a cold start.
    pub initialised_ahead: bool,
}

/// The variables `lambda_runtime` cannot start without.
pub const REQUIRED: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
];

/// Lambda variables that are missing or hold values that cannot be used. Its `Debug`
/// is its message: `main` returning it prints one readable line.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvError {
    /// Required variables that are not set.
    pub missing: Vec<&'static str>,
    /// Variables set to something unusable: the variable, its value, what is accepted.
    pub invalid: Vec<(&'static str, String, String)>,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot run as a Lambda function: ")?;
        if !self.missing.is_empty() {
            write!(f, "{} not set", self.missing.join(", "))?;
        }
        for (i, (key, value, accepts)) in self.invalid.iter().enumerate() {
            let sep = if i > 0 || !self.missing.is_empty() {
                "; "
            } else {
                ""
            };
            write!(f, "{sep}{key} is `{value}`: {accepts}")?;
        }
        f.write_str(
            " (the Lambda service sets these; to run locally, start the emulator with `cargo lambda watch --only-lambda-apis` and set the variables it prints)",
        )
    }
}

impl fmt::Debug for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for EnvError {}

/// The function from the process environment, read once: init, the telemetry
/// settings and the runtime loop all ask for it.
pub(crate) fn current() -> &'static Result<Function, EnvError> {
    static CURRENT: OnceLock<Result<Function, EnvError>> = OnceLock::new();
    CURRENT.get_or_init(Function::from_env)
}

/// Whether this process looks like it runs on Lambda (the Runtime API variable is
/// set). Reads one variable.
pub fn detected() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

impl Function {
    /// Reads the function from the process environment.
    ///
    /// # Errors
    ///
    /// [`EnvError`] naming every required variable that is missing and every value
    /// that cannot be used.
    pub fn from_env() -> Result<Function, EnvError> {
        Function::from_os_lookup(|key| std::env::var_os(key))
    }

    /// [`Function::from_lookup`] over values that may not be UTF-8: a required one that
    /// is not is named with its value (lossily shown), not said to be unset.
    fn from_os_lookup(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Function, EnvError> {
        Function::from_lookup(|key| lookup(key).and_then(|v| v.into_string().ok())).map_err(
            |mut error| {
                let mut missing = Vec::new();
                for key in error.missing {
                    match lookup(key).filter(|v| v.to_str().is_none()) {
                        Some(v) => error.invalid.push((
                            key,
                            v.to_string_lossy().into_owned(),
                            "expected UTF-8 text".to_owned(),
                        )),
                        None => missing.push(key),
                    }
                }
                error.missing = missing;
                error
            },
        )
    }

    /// Reads the function through `lookup` (a variable's value, if set).
    ///
    /// ```
    /// use coldstart_lambda::Function;
    /// let vars = [
    ///     ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
    ///     ("AWS_LAMBDA_FUNCTION_NAME", "hello"),
    ///     ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ///     ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
    /// ];
    /// let lookup = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
    /// let f = Function::from_lookup(lookup).unwrap();
    /// assert_eq!((f.name.as_str(), f.memory_mb), ("hello", 128));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Function::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Function, EnvError> {
        let mut error = EnvError {
            missing: Vec::new(),
            invalid: Vec::new(),
        };
        let mut required = |key: &'static str| {
            let value = lookup(key).filter(|v| !v.trim().is_empty());
            if value.is_none() {
                error.missing.push(key);
            }
            value.unwrap_or_default()
        };
        let api = required("AWS_LAMBDA_RUNTIME_API");
        let name = required("AWS_LAMBDA_FUNCTION_NAME");
        let version = required("AWS_LAMBDA_FUNCTION_VERSION");
        let memory = required("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
        let runtime_api = match RuntimeApi::parse(&api) {
            Ok(api) => Some(api),
            Err(why) if !api.is_empty() => {
                error
                    .invalid
                    .push(("AWS_LAMBDA_RUNTIME_API", api.clone(), why));
                None
            }
            Err(_) => None,
        };
        // As lambda_runtime reads it: untrimmed.
        let memory_mb = match memory.parse::<u32>() {
            Ok(mb) if (1..=i32::MAX as u32).contains(&mb) => Some(mb),
            _ if memory.is_empty() => None,
            _ => {
                error.invalid.push((
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    memory.clone(),
                    "expected a whole number of MB, such as 128, with no spaces around it"
                        .to_owned(),
                ));
                None
            }
        };
        match (runtime_api, memory_mb) {
            (Some(runtime_api), Some(memory_mb))
                if error.missing.is_empty() && error.invalid.is_empty() =>
            {
                Ok(Function {
                    name,
                    version,
                    memory_mb,
                    region: lookup("AWS_REGION").filter(|v| !v.is_empty()),
                    instance: lookup("AWS_LAMBDA_LOG_STREAM_NAME").filter(|v| !v.is_empty()),
                    runtime_api,
                    initialised_ahead: lookup("AWS_LAMBDA_INITIALIZATION_TYPE")
                        .is_some_and(|t| !t.is_empty() && t != "on-demand"),
                })
            }
            _ => Err(error),
        }
    }

    /// The OpenTelemetry resource attributes of the function (FaaS and cloud
    /// conventions): `cloud.provider`, `cloud.platform`, `cloud.region`, `faas.name`,
    /// `faas.version`, `faas.instance`, `faas.max_memory` (bytes).
    pub fn resource_attributes(&self) -> Vec<(String, String)> {
        let mut attributes = vec![
            ("cloud.provider".to_owned(), "aws".to_owned()),
            ("cloud.platform".to_owned(), "aws_lambda".to_owned()),
            ("faas.name".to_owned(), self.name.clone()),
            ("faas.version".to_owned(), self.version.clone()),
            (
                "faas.max_memory".to_owned(),
                (u64::from(self.memory_mb) << 20).to_string(),
            ),
        ];
        if let Some(region) = &self.region {
            attributes.push(("cloud.region".to_owned(), region.clone()));
        }
        if let Some(instance) = &self.instance {
            attributes.push(("faas.instance".to_owned(), instance.clone()));
        }
        attributes
    }
}

/// The account id in a function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`),
/// when it has one.
///
/// ```
/// use coldstart_lambda::account_id;
/// assert_eq!(account_id("arn:aws:lambda:eu-west-1:123456789012:function:hello:live"), Some("123456789012"));
/// assert_eq!(account_id("function-arn"), None);
/// ```
pub fn account_id(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    if parts.next() != Some("arn") {
        return None;
    }
    let account = parts.nth(3)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn runtime_api_forms() {
        let bare = RuntimeApi::parse("169.254.100.1:9001").unwrap();
        assert_eq!(
            (bare.authority.as_str(), bare.base_path.as_str()),
            ("169.254.100.1:9001", "")
        );
        let url = RuntimeApi::parse("http://[::1]:9000/.rt/").unwrap();
        assert_eq!(
            (url.authority.as_str(), url.base_path.as_str()),
            ("[::1]:9000", "/.rt")
        );
        assert_eq!(url.url("/x"), "http://[::1]:9000/.rt/x");
        let upper = RuntimeApi::parse("HTTP://127.0.0.1:9001").unwrap();
        assert_eq!(upper.url("/x"), "http://127.0.0.1:9001/x");
        // Read as lambda_runtime reads them (`http::Uri`): a query or fragment is not
        // part of the base path, user info not part of where to connect.
        for (value, url) in [
            ("http://127.0.0.1:9001?x=1", "http://127.0.0.1:9001/x"),
            (
                "http://127.0.0.1:9001/.rt?x=1",
                "http://127.0.0.1:9001/.rt/x",
            ),
            ("http://127.0.0.1:9001#top", "http://127.0.0.1:9001/x"),
            ("http://u@127.0.0.1:9001", "http://127.0.0.1:9001/x"),
        ] {
            let api = RuntimeApi::parse(value).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(api.url("/x"), url, "{value}");
        }
        for bad in [
            "",
            "localhost",
            "http://",
            ":9001",
            "host:port",
            "https://a:1",
            // lambda_runtime panicked on these (not a URI).
            "::1:9001",
            "my host:9001",
            "h%:9001",
            // Nor a path without the scheme.
            "127.0.0.1:9001/",
            "127.0.0.1:9001/.rt",
            // A URI whose address after the user info is none (found by fuzzing).
            "[@]:9",
            "http://[@]:9",
        ] {
            assert!(RuntimeApi::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_variables_are_all_named() {
        let e = Function::from_lookup(lookup(&[("AWS_LAMBDA_FUNCTION_NAME", "f")])).unwrap_err();
        assert_eq!(
            e.missing,
            [
                "AWS_LAMBDA_RUNTIME_API",
                "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
            ]
        );
        let text = e.to_string();
        assert!(text.starts_with("cannot run as a Lambda function: AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_VERSION, AWS_LAMBDA_FUNCTION_MEMORY_SIZE not set"), "{text}");
    }

    #[test]
    fn invalid_values_are_named_with_what_is_accepted() {
        let e = Function::from_lookup(lookup(&[
            ("AWS_LAMBDA_RUNTIME_API", "https://x:1"),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"),
        ]))
        .unwrap_err();
        assert!(e.missing.is_empty());
        let text = e.to_string();
        assert!(
            text.contains("AWS_LAMBDA_RUNTIME_API is `https://x:1`: the Runtime API is plain HTTP"),
            "{text}"
        );
        assert!(
            text.contains(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is `lots`: expected a whole number of MB"
            ),
            "{text}"
        );
    }

    /// A required variable set to bytes that are not UTF-8 is named with its value,
    /// not said to be unset (it was: `AWS_LAMBDA_FUNCTION_NAME not set`).
    #[test]
    fn a_value_that_is_not_utf8_is_named_as_such() {
        use std::os::unix::ffi::OsStringExt;
        let vars = [
            ("AWS_LAMBDA_RUNTIME_API", b"127.0.0.1:9001".to_vec()),
            ("AWS_LAMBDA_FUNCTION_NAME", b"f\xff".to_vec()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", b"128".to_vec()),
        ];
        let e = Function::from_os_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| std::ffi::OsString::from_vec(v.clone()))
        })
        .unwrap_err();
        assert_eq!(e.missing, ["AWS_LAMBDA_FUNCTION_VERSION"]);
        assert_eq!(
            e.invalid,
            [(
                "AWS_LAMBDA_FUNCTION_NAME",
                "f\u{fffd}".to_owned(),
                "expected UTF-8 text".to_owned()
            )]
        );
        assert!(
            e.to_string().contains(
                "AWS_LAMBDA_FUNCTION_VERSION not set; AWS_LAMBDA_FUNCTION_NAME is `f\u{fffd}`: expected UTF-8 text"
            ),
            "{e}"
        );
    }

    /// Regression: coldstart trimmed these values and accepted them, then
    /// lambda_runtime, which reads them as they are, panicked on them.
    #[test]
    fn values_with_spaces_around_them_are_named_not_passed_on() {
        let e = Function::from_lookup(lookup(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001 "),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", " 128"),
        ]))
        .unwrap_err();
        let named: Vec<_> = e.invalid.iter().map(|(key, _, _)| *key).collect();
        assert_eq!(
            named,
            ["AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        );
        assert!(e.to_string().contains("no spaces around it"), "{e}");
    }

    #[test]
    fn resource_follows_the_faas_conventions() {
        let f = Function::from_lookup(lookup(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_LAMBDA_FUNCTION_NAME", "hello"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[7]abc"),
        ]))
        .unwrap();
        let attrs = f.resource_attributes();
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("faas.max_memory"), Some("536870912"));
        assert_eq!(get("cloud.region"), Some("eu-west-1"));
        assert_eq!(get("faas.instance"), Some("2026/11/24/[7]abc"));
        assert_eq!(get("cloud.provider"), Some("aws"));
    }

    #[test]
    fn only_an_on_demand_environment_has_cold_starts() {
        let ahead = |kind: Option<&str>| {
            let mut vars = vec![
                ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
                ("AWS_LAMBDA_FUNCTION_NAME", "hello"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
            ];
            vars.extend(kind.map(|k| ("AWS_LAMBDA_INITIALIZATION_TYPE", k)));
            Function::from_lookup(lookup(&vars))
                .unwrap()
                .initialised_ahead
        };
        for on_demand in [None, Some(""), Some("on-demand")] {
            assert!(!ahead(on_demand), "{on_demand:?}");
        }
        for kind in [
            "provisioned-concurrency",
            "snap-start",
            "lambda-managed-instances",
        ] {
            assert!(ahead(Some(kind)), "{kind}");
        }
    }

    proptest::proptest! {
        #[test]
        fn runtime_api_parse_never_panics(s in ".{0,64}") {
            let _ = RuntimeApi::parse(&s);
            let _ = account_id(&s);
        }
    }
}

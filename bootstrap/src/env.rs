//! Where configuration variables come from: the real process environment, or a fixed
//! list (tests, `doctor` with `--env`). Never caches: a variable is read when asked.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};

/// A source of environment variables.
///
/// ```
/// use coldstart_bootstrap::Env;
/// let env = Env::fixed([("COLDSTART_STRATEGY", "minimal")]);
/// assert_eq!(env.get("COLDSTART_STRATEGY").as_deref(), Some("minimal".as_ref()));
/// assert!(env.get("HOME").is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub enum Env {
    /// The environment of this process.
    #[default]
    Process,
    /// Exactly these variables, and no others.
    Fixed(Vec<(OsString, OsString)>),
}

impl Env {
    /// The environment of this process.
    pub fn process() -> Self {
        Env::Process
    }

    /// Exactly the given variables.
    pub fn fixed<K: Into<OsString>, V: Into<OsString>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env::Fixed(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<Cow<'_, OsStr>> {
        match self {
            Env::Process => std::env::var_os(key).map(Cow::Owned),
            Env::Fixed(vars) => vars
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Cow::Borrowed(v.as_os_str())),
        }
    }
}

//! Where settings come from, in layers: the configuration file, then code, then the
//! environment (the real process environment, or a fixed list for tests). Never
//! caches a variable: it is read when asked.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;

use crate::config::{ConfigFile, FileError, file_key};

/// Settings by variable name, from the environment, code and the configuration file.
///
/// ```
/// use coldstart_bootstrap::Env;
/// let env = Env::fixed([("COLDSTART_STRATEGY", "minimal")]);
/// assert_eq!(env.get("COLDSTART_STRATEGY").as_deref(), Some("minimal".as_ref()));
/// assert!(env.get("HOME").is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: Vars,
    code: Vec<(&'static str, String)>,
    file: Option<&'static ConfigFile>,
}

#[derive(Debug, Clone, Default)]
enum Vars {
    #[default]
    Process,
    Fixed(Vec<(OsString, OsString)>),
}

/// The layer a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// An environment variable.
    Variable,
    /// Code: `coldstart::Builder::set`.
    Code,
    /// The configuration file, at this line.
    File {
        /// The file's path.
        path: &'static str,
        /// The line, from 1.
        line: u32,
    },
}

impl Layer {
    /// Whether a value from this layer overrides one from `other`, as
    /// [`Env::lookup`] orders them: a variable overrides code, code the file.
    ///
    /// ```
    /// use coldstart_bootstrap::Layer;
    /// let file = Layer::File { path: "coldstart.toml", line: 3 };
    /// assert!(Layer::Variable.overrides(file) && Layer::Code.overrides(file));
    /// assert!(!file.overrides(Layer::Code) && !Layer::Code.overrides(Layer::Code));
    /// ```
    pub fn overrides(self, other: Layer) -> bool {
        let rank = |layer| match layer {
            Layer::File { .. } => 0,
            Layer::Code => 1,
            Layer::Variable => 2,
        };
        rank(self) > rank(other)
    }

    /// Where a value of `variable` came from, for messages: `` (coldstart.toml line 3,
    /// `[coldstart] metrics_addr`)``; nothing for a variable.
    pub fn describe(self, variable: &str) -> impl fmt::Display + '_ {
        struct Describe<'a>(Layer, &'a str);
        impl fmt::Display for Describe<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Layer::Variable => Ok(()),
                    Layer::Code => f.write_str(" (set in code)"),
                    Layer::File { path, line } => {
                        write!(f, " ({path} line {line}, `{}`)", file_key(self.1))
                    }
                }
            }
        }
        Describe(self, variable)
    }
}

impl Env {
    /// Whether `key` is set in a layer above the one `other` is set in (both set): of
    /// two settings for one thing, the layers decide first, then the more specific.
    ///
    /// ```
    /// use coldstart_bootstrap::Env;
    /// let env = Env::fixed([("RUST_LOG", "debug")]);
    /// assert!(!env.set_above("RUST_LOG", "COLDSTART_LOG_FILTER"));
    /// ```
    pub fn set_above(&self, key: &str, other: &str) -> bool {
        match (self.lookup(key), self.lookup(other)) {
            (Some((_, key)), Some((_, other))) => key.overrides(other),
            _ => false,
        }
    }

    /// The environment of this process, with no file and nothing set in code.
    pub fn process() -> Self {
        Env::default()
    }

    /// Exactly the given variables, with no file and nothing set in code.
    pub fn fixed<K: Into<OsString>, V: Into<OsString>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            vars: Vars::Fixed(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            ..Env::default()
        }
    }

    /// Adds the configuration file the environment points at (see
    /// [`crate::config`]), kept for the rest of the program.
    ///
    /// # Errors
    ///
    /// The file cannot be read or is not valid.
    pub fn with_file_from_env(self) -> Result<Self, FileError> {
        let file = ConfigFile::find(|key| self.var(key).map(|v| v.to_string_lossy().into_owned()))?;
        Ok(match file {
            Some(file) => self.with_file(Box::leak(Box::new(file))),
            None => self,
        })
    }

    /// Uses `file` as the configuration file layer.
    pub fn with_file(mut self, file: &'static ConfigFile) -> Self {
        self.file = Some(file);
        self
    }

    /// Sets `variable` in the code layer: above the file, below the environment.
    pub fn with_code(mut self, variable: &'static str, value: String) -> Self {
        self.code.retain(|(k, _)| *k != variable);
        self.code.push((variable, value));
        self
    }

    /// The configuration file in use, if any.
    pub fn file(&self) -> Option<&'static ConfigFile> {
        self.file
    }

    /// The value of `key`, from the highest layer that sets it.
    pub fn get(&self, key: &str) -> Option<Cow<'_, OsStr>> {
        self.lookup(key).map(|(v, _)| v)
    }

    /// Whether some layer sets `key` to more than blanks.
    pub fn is_set(&self, key: &str) -> bool {
        self.lookup(key).is_some()
    }

    /// The value of `key` and the layer it came from: the highest layer that sets it
    /// to more than blanks. A blank value counts as unset, as the OpenTelemetry
    /// specification says of an empty variable, and the layers below are read
    /// (`COLDSTART_STRATEGY=${STRATEGY}` in a compose file, with `STRATEGY` unset,
    /// leaves the file's value in force).
    pub fn lookup(&self, key: &str) -> Option<(Cow<'_, OsStr>, Layer)> {
        let given = |v: &OsStr| !v.to_string_lossy().trim().is_empty();
        if let Some(v) = self.var(key).filter(|v| given(v)) {
            return Some((v, Layer::Variable));
        }
        if let Some((_, v)) = self
            .code
            .iter()
            .find(|(k, v)| *k == key && given(OsStr::new(v)))
        {
            return Some((Cow::Borrowed(OsStr::new(v)), Layer::Code));
        }
        let file = self.file?;
        let entry = file.get(key).filter(|e| given(OsStr::new(&e.value)))?;
        Some((
            Cow::Borrowed(OsStr::new(&entry.value)),
            Layer::File {
                path: &file.path,
                line: entry.line,
            },
        ))
    }

    /// The environment variable alone, blank or not: for another program's variable
    /// read as that program reads it (mimalloc's options).
    pub(crate) fn var(&self, key: &str) -> Option<Cow<'_, OsStr>> {
        match &self.vars {
            Vars::Process => std::env::var_os(key).map(Cow::Owned),
            Vars::Fixed(vars) => vars
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Cow::Borrowed(v.as_os_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_beats_code_beats_the_file() {
        let file = ConfigFile::parse(
            "coldstart.toml",
            "[coldstart]\nstrategy = \"minimal\"\nprewarm = true\nlog = \"debug\"\n",
        )
        .unwrap();
        let env = Env::fixed([("COLDSTART_STRATEGY", "throughput")])
            .with_file(Box::leak(Box::new(file)))
            .with_code("COLDSTART_STRATEGY", "balanced".into())
            .with_code("COLDSTART_PREWARM", "false".into());
        let layer = |k| env.lookup(k).map(|(v, l)| (v.into_owned(), l));
        assert_eq!(
            layer("COLDSTART_STRATEGY"),
            Some(("throughput".into(), Layer::Variable))
        );
        assert_eq!(
            layer("COLDSTART_PREWARM"),
            Some(("false".into(), Layer::Code))
        );
        let from_file = Layer::File {
            path: "coldstart.toml",
            line: 4,
        };
        assert_eq!(layer("COLDSTART_LOG"), Some(("debug".into(), from_file)));
        assert_eq!(
            from_file.describe("COLDSTART_LOG").to_string(),
            " (coldstart.toml line 4, `[coldstart] log`)"
        );
        assert_eq!(layer("COLDSTART_FLAVOR"), None);
    }

    /// An empty variable is unset (`COLDSTART_STRATEGY=${STRATEGY}` in a compose file
    /// with `STRATEGY` unset): the layers below it are read.
    #[test]
    fn a_blank_value_leaves_the_layer_below_in_force() {
        let file = ConfigFile::parse("coldstart.toml", "[coldstart]\nlog = \"debug\"\n").unwrap();
        let env = Env::fixed([("COLDSTART_STRATEGY", ""), ("COLDSTART_LOG", "  ")])
            .with_file(Box::leak(Box::new(file)))
            .with_code("COLDSTART_STRATEGY", "minimal".into())
            .with_code("COLDSTART_FLAVOR", " ".into());
        let layer = |k| env.lookup(k).map(|(v, l)| (v.into_owned(), l));
        assert_eq!(
            layer("COLDSTART_STRATEGY"),
            Some(("minimal".into(), Layer::Code))
        );
        assert!(matches!(
            layer("COLDSTART_LOG"),
            Some((_, Layer::File { .. }))
        ));
        assert_eq!(layer("COLDSTART_FLAVOR"), None);
        assert!(!env.is_set("COLDSTART_FLAVOR"));
    }
}

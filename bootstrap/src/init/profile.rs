/*!
The init profile: for each registration, whether the first request needed it and how
long it took. Written by a run with `COLDSTART_PROFILE_OUT`, read with
`COLDSTART_PROFILE` or embedded with `#[coldstart::main(profile = "...")]`.

The format is line-based text, versioned by its first line:

```text
coldstart-profile 1
# needed  micros  kind    name
needed    1520    static  http_server::CONFIG
later     50231   async   http_server::warm_cache
```

After the header, each line is `needed` or `later`, the duration in whole
microseconds, the kind (`fn`, `async` or `static`; informational) and the name, which
is the rest of the line. Blank lines and lines starting with `#` are ignored. A name
may appear once. Parsing never panics; an error names the line.
*/

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;

use super::Fx;

/// The first line of every profile this version writes and reads.
pub const HEADER: &str = "coldstart-profile 1";

/// A parsed profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// The entries, in file order.
    pub entries: Vec<Entry>,
}

/// One registration's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The registration's name.
    pub name: String,
    /// Whether the first request needed it.
    pub needed: bool,
    /// How long it took, in microseconds.
    pub micros: u64,
    /// `fn`, `async` or `static`.
    pub kind: &'static str,
}

/// Why a profile could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ProfileError {}

fn error(line: usize, message: String) -> ProfileError {
    ProfileError { line, message }
}

impl Profile {
    /// Parses a profile.
    ///
    /// ```
    /// use coldstart_bootstrap::init::Profile;
    /// let p = Profile::parse("coldstart-profile 1\nneeded 12 static app::CONFIG\n").unwrap();
    /// assert!(p.get("app::CONFIG").unwrap().needed);
    /// let e = Profile::parse("coldstart-profile 1\nsoon 12 fn app::x\n").unwrap_err();
    /// assert_eq!(e.to_string(), "line 2: expected `needed` or `later`, got `soon`");
    /// ```
    ///
    /// # Errors
    ///
    /// A missing or unknown header, a malformed line, or a name given twice.
    pub fn parse(text: &str) -> Result<Profile, ProfileError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_ascii()));
        let header = lines
            .by_ref()
            .find(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        match header {
            Some((_, HEADER)) => {}
            Some((n, l)) => match l.strip_prefix("coldstart-profile ") {
                Some(v) => {
                    return Err(error(
                        n,
                        format!("profile version `{v}` is not one this coldstart reads (1)"),
                    ));
                }
                None => return Err(error(n, format!("expected `{HEADER}`, got `{}`", clip(l)))),
            },
            None => return Err(error(1, format!("empty profile: expected `{HEADER}`"))),
        }
        // Each name's line, to report a duplicate without a quadratic search.
        let capacity = text.len() / 40;
        let mut entries: Vec<Entry> = Vec::with_capacity(capacity);
        let mut seen: HashMap<&str, usize, BuildHasherDefault<Fx>> =
            HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default());
        for (n, line) in lines {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (entry, name) = entry(line).map_err(|m| error(n, m))?;
            if let Some(first) = seen.insert(name, n) {
                return Err(error(
                    n,
                    format!("`{}` appears twice (first on line {first})", entry.name),
                ));
            }
            entries.push(entry);
        }
        Ok(Profile { entries })
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// A line's entry, and its name as a slice of the line.
fn entry(line: &str) -> Result<(Entry, &str), String> {
    let mut rest = line;
    let mut field = |what: &str| -> Result<&str, String> {
        // Fields are separated by ASCII blanks; bytes, not chars, keep this cheap
        // (a profile is parsed on the start-up path).
        let trimmed = rest.trim_ascii_start();
        let end = trimmed
            .bytes()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(trimmed.len());
        if end == 0 {
            return Err(format!(
                "missing {what}: expected `needed|later <micros> <kind> <name>`"
            ));
        }
        rest = &trimmed[end..];
        Ok(&trimmed[..end])
    };
    let needed = match field("`needed` or `later`")? {
        "needed" => true,
        "later" => false,
        other => {
            return Err(format!(
                "expected `needed` or `later`, got `{}`",
                clip(other)
            ));
        }
    };
    let micros = field("the duration in microseconds")?;
    let micros = micros.parse::<u64>().map_err(|_| {
        format!(
            "expected the duration in whole microseconds, got `{}`",
            clip(micros)
        )
    })?;
    let kind = match field("the kind")? {
        "fn" => "fn",
        "async" => "async",
        "static" => "static",
        other => {
            return Err(format!(
                "expected the kind `fn`, `async` or `static`, got `{}`",
                clip(other)
            ));
        }
    };
    let name = rest.trim_ascii();
    if name.is_empty() {
        return Err("missing the registration's name after the kind".to_string());
    }
    let entry = Entry {
        name: name.to_string(),
        needed,
        micros,
        kind,
    };
    Ok((entry, name))
}

/// At most 40 characters of a bad value, so one error stays one line.
fn clip(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

impl fmt::Display for Profile {
    /// The file format, readable by [`Profile::parse`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        writeln!(f, "# needed  micros  kind    name")?;
        for e in &self.entries {
            let needed = if e.needed { "needed" } else { "later" };
            writeln!(f, "{needed:<9} {:<7} {:<7} {}", e.micros, e.kind, e.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_err(text: &str) -> String {
        Profile::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_what_it_writes() {
        let p = Profile {
            entries: vec![
                Entry {
                    name: "a::CONFIG".into(),
                    needed: true,
                    micros: 1520,
                    kind: "static",
                },
                Entry {
                    name: "given name with spaces".into(),
                    needed: false,
                    micros: 0,
                    kind: "async",
                },
            ],
        };
        assert_eq!(Profile::parse(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse_err(""),
            "line 1: empty profile: expected `coldstart-profile 1`"
        );
        assert_eq!(
            parse_err("\n# c\nhello\n"),
            "line 3: expected `coldstart-profile 1`, got `hello`"
        );
        assert_eq!(
            parse_err("coldstart-profile 2\n"),
            "line 1: profile version `2` is not one this coldstart reads (1)"
        );
        let head = "coldstart-profile 1\n";
        assert_eq!(
            parse_err(&format!("{head}needed ten fn a")),
            "line 2: expected the duration in whole microseconds, got `ten`"
        );
        assert_eq!(
            parse_err(&format!("{head}needed 1 method a")),
            "line 2: expected the kind `fn`, `async` or `static`, got `method`"
        );
        assert_eq!(
            parse_err(&format!("{head}needed 1 fn")),
            "line 2: missing the registration's name after the kind"
        );
        assert_eq!(
            parse_err(&format!("{head}needed")),
            "line 2: missing the duration in microseconds: expected `needed|later <micros> <kind> <name>`"
        );
        assert_eq!(
            parse_err(&format!("{head}needed 1 fn a\n\nlater 2 fn a")),
            "line 4: `a` appears twice (first on line 2)"
        );
    }

    #[test]
    fn comments_blank_lines_and_spacing_are_ignored() {
        let p = Profile::parse(
            "# written by hand\n\n  coldstart-profile 1  \n\n#x\n later\t 3 \t fn   a b \n",
        )
        .unwrap();
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.get("a b").unwrap().micros, 3);
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = Profile::parse(&text);
            let _ = Profile::parse(&format!("{HEADER}\n{text}"));
        }

        #[test]
        fn round_trips(entries in proptest::collection::btree_map(
            "[a-z_:]{1,20}( [a-z]{1,5})?", (any::<bool>(), any::<u64>(), 0..3usize), 0..8)
        ) {
            let p = Profile {
                entries: entries.into_iter().map(|(name, (needed, micros, k))| Entry {
                    name, needed, micros, kind: ["fn", "async", "static"][k],
                }).collect(),
            };
            prop_assert_eq!(Profile::parse(&p.to_string()).unwrap(), p);
        }
    }
}

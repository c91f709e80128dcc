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

/// A profile: its entries in file order. One parsed from text borrows its names from
/// that text and cannot outlive it (parsing is on the start-up path, and allocates
/// nothing per line).
#[derive(Clone, Default)]
pub struct Profile<'a> {
    entries: Vec<Entry<'a>>,
    /// Each name's position in `entries` (each name is there once).
    index: HashMap<&'a str, usize, BuildHasherDefault<Fx>>,
}

/// Two profiles are equal when their entries are: the index follows from them.
impl PartialEq for Profile<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Profile<'_> {}

impl fmt::Debug for Profile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// One registration's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The registration's name.
    pub name: &'a str,
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

/// The largest profile file read: one line per registration, a few KB in practice.
pub const FILE_LIMIT: u64 = 4 << 20;

/// Reads a profile file's text: a regular file of at most [`FILE_LIMIT`] bytes, so
/// that a wrong path (a FIFO nobody writes to, `/dev/zero`, a large file) is said
/// instead of blocking, or filling memory (see [`crate::file::read_named`]).
///
/// # Errors
///
/// What [`crate::file::read_named`] refuses, and a file that is not UTF-8 text.
pub fn read_file(path: &std::path::Path) -> std::io::Result<String> {
    crate::file::read_named_text(path, FILE_LIMIT)
}

impl<'a> Profile<'a> {
    /// A profile of `entries`, what a run records.
    ///
    /// ```
    /// use coldstart_bootstrap::init::profile::{Entry, Profile};
    /// let config = Entry { name: "app::CONFIG", needed: true, micros: 12, kind: "static" };
    /// let p = Profile::new(vec![config.clone()]);
    /// assert_eq!(p.entries(), [config]);
    /// assert!(p.to_string().ends_with("needed    12      static  app::CONFIG\n"));
    /// ```
    ///
    /// Entries sharing a name (two registrations given one name) become one, where the
    /// first was: needed if either was, with the longer time. A profile names each
    /// registration once, so what it writes [`Profile::parse`] reads back.
    ///
    /// ```
    /// use coldstart_bootstrap::init::profile::{Entry, Profile};
    /// let warm = |needed, micros| Entry { name: "warm", needed, micros, kind: "fn" };
    /// let p = Profile::new(vec![warm(false, 30), warm(true, 12)]);
    /// assert_eq!(p.entries(), [warm(true, 30)]);
    /// assert_eq!(Profile::parse(&p.to_string()).unwrap().entries(), [warm(true, 30)]);
    /// ```
    pub fn new(entries: Vec<Entry<'a>>) -> Profile<'a> {
        use std::collections::hash_map::Entry as Slot;
        let mut index =
            HashMap::with_capacity_and_hasher(entries.len(), BuildHasherDefault::default());
        let mut kept: Vec<Entry<'a>> = Vec::with_capacity(entries.len());
        for e in entries {
            match index.entry(e.name) {
                Slot::Occupied(first) => {
                    let first: &mut Entry<'a> = &mut kept[*first.get()];
                    first.needed |= e.needed;
                    first.micros = first.micros.max(e.micros);
                }
                Slot::Vacant(slot) => {
                    slot.insert(kept.len());
                    kept.push(e);
                }
            }
        }
        Profile {
            entries: kept,
            index,
        }
    }

    /// The entries, in file order.
    ///
    /// ```
    /// use coldstart_bootstrap::init::Profile;
    /// let p = Profile::parse("coldstart-profile 1\nlater 9 fn b\nneeded 3 fn a\n").unwrap();
    /// let names: Vec<&str> = p.entries().iter().map(|e| e.name).collect();
    /// assert_eq!(names, ["b", "a"]);
    /// ```
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// Where `name`'s entry is in [`Profile::entries`].
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

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
    pub fn parse(text: &'a str) -> Result<Profile<'a>, ProfileError> {
        // An editor's byte-order mark is not part of the header.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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
                        format!(
                            "profile version `{}` is not one this coldstart reads (1)",
                            clip(v)
                        ),
                    ));
                }
                None => return Err(error(n, format!("expected `{HEADER}`, got `{}`", clip(l)))),
            },
            None => return Err(error(1, format!("empty profile: expected `{HEADER}`"))),
        }
        let capacity = text.len() / 40;
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(capacity);
        let mut index: HashMap<&str, usize, BuildHasherDefault<Fx>> =
            HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default());
        for (n, line) in lines {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = entry(line).map_err(|m| error(n, m))?;
            if index.insert(entry.name, entries.len()).is_some() {
                return Err(error(
                    n,
                    format!(
                        "`{}` appears twice (first on line {})",
                        clip(entry.name),
                        first_line(text, entry.name)
                    ),
                ));
            }
            entries.push(entry);
        }
        Ok(Profile { entries, index })
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&Entry<'a>> {
        self.position(name).map(|i| &self.entries[i])
    }
}

/// The line of `name`'s first entry in `text`, which has already parsed up to a
/// second one (only an error message needs it).
fn first_line(text: &str, name: &str) -> usize {
    text.lines()
        .map(str::trim_ascii)
        .position(|l| entry(l).is_ok_and(|e| e.name == name))
        .map_or(0, |i| i + 1)
}

/// A line's entry; its name is a slice of the line.
fn entry(line: &str) -> Result<Entry<'_>, String> {
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
    Ok(Entry {
        name,
        needed,
        micros,
        kind,
    })
}

/// At most 40 characters of a bad value, its control and invisible characters
/// escaped, so one error stays one line.
pub(crate) fn clip(s: &str) -> String {
    clip_to(s, 40)
}

/// At most `max` characters of `s`, escaped as [`clip`] escapes them.
pub(crate) fn clip_to(s: &str, max: usize) -> String {
    use crate::plan::settings::OneLine;
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", OneLine(&s[..i])),
        None => OneLine(s).to_string(),
    }
}

impl fmt::Display for Profile<'_> {
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
        let p = Profile::new(vec![
            Entry {
                name: "a::CONFIG",
                needed: true,
                micros: 1520,
                kind: "static",
            },
            Entry {
                name: "given name with spaces",
                needed: false,
                micros: 0,
                kind: "async",
            },
        ]);
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
        // What comes from the file is clipped and escaped: one line stays one, and a
        // profile of megabytes does not make a line of megabytes.
        let long = "9".repeat(2 << 20);
        assert_eq!(
            parse_err(&format!("coldstart-profile {long}\n")),
            format!(
                "line 1: profile version `{}...` is not one this coldstart reads (1)",
                "9".repeat(40)
            )
        );
        assert_eq!(
            parse_err(&format!(
                "{head}needed 1 fn a\u{1b}[2J\nlater 2 fn a\u{1b}[2J"
            )),
            "line 3: `a\\u{1b}[2J` appears twice (first on line 2)"
        );
    }

    #[test]
    fn comments_blank_lines_and_spacing_are_ignored() {
        let p = Profile::parse(
            "# written by hand\n\n  coldstart-profile 1  \n\n#x\n later\t 3 \t fn   a b \n",
        )
        .unwrap();
        assert_eq!(p.entries().len(), 1);
        assert_eq!(p.get("a b").unwrap().micros, 3);
    }

    #[test]
    fn a_byte_order_mark_before_the_header_is_not_part_of_it() {
        let p = Profile::parse("\u{feff}coldstart-profile 1\nlater 3 fn a\n").unwrap();
        assert_eq!(p.get("a").unwrap().micros, 3);
        assert_eq!(
            parse_err("coldstart-profile 1\n\u{feff}later 3 fn a\n"),
            // Shown escaped: it shows nothing.
            "line 2: expected `needed` or `later`, got `\\u{feff}later`"
        );
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
            let p = Profile::new(entries.iter().map(|(name, &(needed, micros, k))| Entry {
                name, needed, micros, kind: ["fn", "async", "static"][k],
            }).collect());
            let text = p.to_string();
            prop_assert_eq!(Profile::parse(&text).unwrap(), p);
        }
    }
}

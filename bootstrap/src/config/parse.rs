//! The file's TOML: two tables of keys with string, number or boolean values, read
//! line by line. What is not that is an error naming the line, never a panic, and a
//! line quoted in a message only by a start that looks like a key, not a token.

use super::{ConfigFile, ENVIRONMENT_ONLY, Entry, FileError, TABLES, VARIABLES, shown};

impl ConfigFile {
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
                    // A key a typo away from a setting's is shown whatever its look
                    // (no secret is two edits from a public name), with the setting.
                    let near = nearest_key(table, key);
                    match (opening(written), near) {
                        (shown, Some(near)) => format!(
                            "`[{table}] {}` is not a setting coldstart reads; did you mean `[{table}] {near}`?",
                            shown.unwrap_or_else(|| key.escape_debug().to_string())
                        ),
                        (Some(key), None) => format!(
                            "`[{table}] {key}` is not a setting coldstart reads (the README's Settings and Telemetry sections list them)"
                        ),
                        (None, None) => format!(
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
pub(super) fn variable_of(table: &str, key: &str) -> Option<&'static str> {
    let prefix = prefix_of(table)?;
    VARIABLES.iter().copied().find(|v| {
        v.strip_prefix(prefix)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(key) && !key.contains(char::is_uppercase))
    })
}

/// The key of `[table]` that `key` is a typo of: at most two edits (a character
/// added, left out or changed) from it, the nearest, for the message that refuses
/// `key`.
fn nearest_key(table: &str, key: &str) -> Option<String> {
    // Longer, it is no typo of any (the longest key has under 48 characters); and
    // the distance costs the product of the two lengths.
    if key.len() > 64 {
        return None;
    }
    let prefix = prefix_of(table)?;
    VARIABLES
        .iter()
        .filter_map(|v| v.strip_prefix(prefix))
        .map(str::to_ascii_lowercase)
        .map(|known| (edits(key.as_bytes(), known.as_bytes()), known))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

/// The edit distance of `a` and `b` (Levenshtein, by bytes).
fn edits(a: &[u8], b: &[u8]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(x != y))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
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

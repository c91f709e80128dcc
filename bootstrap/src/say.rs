//! coldstart's lines on stderr.

use std::fmt;
use std::io::Write;

/// Writes `args` and a line break to stderr, in one write. A stderr that cannot be
/// written (a pipe whose reader is gone: Rust ignores SIGPIPE, so the write fails
/// with `EPIPE`) loses the line; `eprintln!` would panic there, wherever coldstart
/// was saying something, a shutdown or an exit code included.
///
/// ```
/// coldstart_bootstrap::say!("coldstart: {} and {}", "one line", "never a panic");
/// ```
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(::std::format_args!($($arg)*))
    };
}

/// What [`say!`] expands to: the line made first, so that it goes out in one write
/// (stderr is unbuffered: `writeln!` would write each piece, and another process's
/// lines on the same pipe could come between them).
#[doc(hidden)]
pub fn line(args: fmt::Arguments<'_>) {
    let mut line = fmt::format(args);
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

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

/// What [`say!`] expands to.
#[doc(hidden)]
pub fn line(args: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

//! Reading a file that a setting names (the configuration file, an init profile, a
//! PEM file): a regular file of bounded size, never a FIFO or a device.
//!
//! A setting is whatever the environment says, so its path can be wrong in ways that
//! `std::fs::read` does not survive: a FIFO with no writer blocks the open forever, and
//! `/dev/zero` or a large log file is read into memory whole. Here the file is opened
//! without blocking (`O_NONBLOCK`, which changes nothing for a regular file), refused
//! unless it is a regular file, and refused past `limit` bytes, each with an error that
//! says so. The cost is one `statx` more than `std::fs::read` for a file that is
//! there, and none for one that is not (the `statx` fails where `open` would).

use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Reads the regular file at `path`, at most `limit` bytes of it.
///
/// # Errors
///
/// The open's own error (`NotFound` for a missing file, so a caller can tell it from
/// the rest); `InvalidInput` for a path that is not a regular file (it names what the
/// path is) or a file larger than `limit`; a read error.
///
/// ```
/// use std::io::ErrorKind;
/// use coldstart_bootstrap::file::read_named;
///
/// let device = read_named("/dev/null".as_ref(), 1 << 20).unwrap_err();
/// assert_eq!(device.kind(), ErrorKind::InvalidInput);
/// assert_eq!(device.to_string(), "is a character device, not a regular file");
/// ```
pub fn read_named(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Looked at before it is opened: opening a device can act (a watchdog starts, a
    // tape rewinds when closed), and a socket cannot be opened at all.
    regular(std::fs::metadata(path)?)?;
    // Looked at again once open, in case the path changed in between; a terminal is
    // not made the controlling one.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = regular(file.metadata()?)?;
    // The size `statx` gave sizes the buffer, so the file takes one read; a file that
    // grows meanwhile is still cut at the limit.
    let size = meta.len().min(limit.saturating_add(1));
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(refused(format!(
            "is larger than {}, more than such a file holds",
            shown_size(limit)
        )));
    }
    Ok(bytes)
}

/// [`read_named`], as text.
///
/// # Errors
///
/// What [`read_named`] gives, and `InvalidData` for a file that is not UTF-8 text,
/// naming the line of the first byte that is not.
pub fn read_named_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_named(path, limit)?).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "is not UTF-8 text (line {line}; byte {} of the file)",
                valid.len() + 1
            ),
        )
    })
}

/// `meta` when it is a regular file's, else the error that says what it is.
fn regular(meta: std::fs::Metadata) -> io::Result<std::fs::Metadata> {
    if meta.is_file() {
        return Ok(meta);
    }
    Err(refused(format!(
        "is {}, not a regular file",
        what_it_is(meta.file_type())
    )))
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// What a path that is not a regular file is, in words (`a FIFO`, `a directory`).
///
/// ```
/// let kind = std::fs::metadata("/").unwrap().file_type();
/// assert_eq!(coldstart_bootstrap::file::what_it_is(kind), "a directory");
/// ```
pub fn what_it_is(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// `limit` in the largest whole binary unit (`4 MiB`, `512 KiB`, `100 bytes`).
fn shown_size(limit: u64) -> String {
    match limit {
        l if l >= 1 << 20 && l % (1 << 20) == 0 => format!("{} MiB", l >> 20),
        l if l >= 1 << 10 && l % (1 << 10) == 0 => format!("{} KiB", l >> 10),
        l => format!("{l} bytes"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::Duration;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("coldstart-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_regular_file_is_read_whole_up_to_the_limit() {
        let dir = temp_dir("regular");
        let path = dir.join("settings.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        assert_eq!(read_named(&path, 6).unwrap(), b"a = 1\n");
        let past = read_named(&path, 5).unwrap_err();
        assert_eq!(past.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            past.to_string(),
            "is larger than 5 bytes, more than such a file holds"
        );
        let missing = read_named(&dir.join("none"), 6).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Text that is not UTF-8 is refused naming where: the message said only that.
    #[test]
    fn text_that_is_not_utf8_is_refused_with_its_line() {
        let dir = temp_dir("utf8");
        let path = dir.join("coldstart.toml");
        std::fs::write(&path, b"[otel]\nservice_name = \"\xff\"\n").unwrap();
        let e = read_named_text(&path, 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            e.to_string(),
            "is not UTF-8 text (line 2; byte 24 of the file)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A FIFO nobody writes to is refused at once; `std::fs::read` waits in `open`
    /// forever. The read runs on a thread, so a regression fails the test by the
    /// timeout instead of hanging the suite.
    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = temp_dir("fifo");
        let path = dir.join("profile");
        coldstart_test_support::fifo(&path);
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = path.clone();
        std::thread::spawn(move || tx.send(read_named(&reader, 1 << 20)));
        let got = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the read of a FIFO with no writer did not return");
        let e = got.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "is a FIFO, not a regular file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_and_devices_are_named() {
        let dir = temp_dir("kinds");
        let e = read_named(&dir, 1 << 20).unwrap_err();
        assert_eq!(e.to_string(), "is a directory, not a regular file");
        let e = read_named("/dev/zero".as_ref(), 1 << 20).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A socket cannot even be opened (`ENXIO`, "No such device or address"): it is
    /// named for what it is, found before the open.
    #[test]
    fn a_socket_is_named_not_opened() {
        let dir = temp_dir("socket");
        let path = dir.join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let e = read_named(&path, 1 << 20).unwrap_err();
        assert_eq!(e.to_string(), "is a socket, not a regular file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_are_shown_in_whole_units() {
        assert_eq!(shown_size(4 << 20), "4 MiB");
        assert_eq!(shown_size(512 << 10), "512 KiB");
        assert_eq!(shown_size(1000), "1000 bytes");
    }
}

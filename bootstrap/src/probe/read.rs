//! Reading the small files the probe needs without allocating: a path buffer that is
//! reused for every file, and a stack buffer for the contents.
//!
//! The files are the kernel's, but the probe's root can be any tree (`doctor --root`),
//! and what is there need not be a file. Outside `/proc` and `/sys` (a fixture tree, or
//! a cgroup mount somewhere unusual) a path must be a regular file, looked at before it
//! is opened: opening a device can act (a watchdog starts). Every file is opened
//! without blocking (a FIFO that slipped through reads as empty instead of holding the
//! open forever; nothing changes for the kernel's files, in the same `openat`) and read
//! up to [`MAX_TEXT`] (`/dev/zero` is not read until memory runs out).

use std::borrow::Cow;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The most of one file the probe reads: a mountinfo of some 400 000 mounts.
pub(crate) const MAX_TEXT: u64 = 64 << 20;

/// Large enough for every kernel file the probe reads in full; `memory.stat` can be
/// longer, but the keys it needs come in its first lines.
pub(crate) const BUF: usize = 4096;

/// Reads at most `BUF` bytes of `path` into `buf` and returns them as text. A file
/// longer than that keeps its whole lines (`memory.stat`, whose keys come first). A
/// file whose first line does not fit, or that is not UTF-8 text, is an error: the part
/// before the cut or the odd byte (`67` of `67\xff108864`) would be read as the value.
pub(crate) fn read_small<'b>(path: &Path, buf: &'b mut [u8; BUF]) -> io::Result<&'b str> {
    let len = fill(&mut open(path)?, buf)?;
    let mut bytes = &buf[..len];
    if len == BUF {
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line longer than {BUF} bytes"),
            ));
        };
        bytes = &bytes[..=end];
    }
    std::str::from_utf8(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.valid_up_to() + 1),
        )
    })
}

/// Reads the whole of `path` as text, into `buf` when it fits (no allocation) and on
/// the heap when it does not; bytes that are not UTF-8 become U+FFFD, so that one odd
/// line (a cgroup path is any bytes) leaves the lines after it whole.
pub(crate) fn read_text<'b>(path: &Path, buf: &'b mut [u8; BUF]) -> io::Result<Cow<'b, str>> {
    let mut file = open(path)?;
    let len = fill(&mut file, buf)?;
    if len < buf.len() {
        return Ok(String::from_utf8_lossy(&buf[..len]));
    }
    let mut bytes = buf.to_vec();
    read_rest(file, &mut bytes)?;
    Ok(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Opens `path` for reading without blocking, and without making a terminal the
/// controlling one; outside `/proc` and `/sys`, only a regular file.
fn open(path: &Path) -> io::Result<std::fs::File> {
    let kernels = path.starts_with("/proc") || path.starts_with("/sys");
    if !kernels && !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Reads the rest of `file` onto `bytes`, to its end however short its reads come
/// before it; an error past [`MAX_TEXT`] in all.
fn read_rest(file: impl Read, bytes: &mut Vec<u8>) -> io::Result<()> {
    let left = MAX_TEXT + 1 - bytes.len() as u64;
    file.take(left).read_to_end(bytes)?;
    if bytes.len() as u64 > MAX_TEXT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {} MiB", MAX_TEXT >> 20),
        ));
    }
    Ok(())
}

/// Reads from `file` into `buf` until it is full or the file ends; the length read.
fn fill(file: &mut std::fs::File, buf: &mut [u8; BUF]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            // Kernel pseudo-files (seq_file) hand out whole records per read: a short
            // read is the end, and saves the extra read(2) that would return 0.
            Ok(n) if n < buf.len() - len => {
                len += n;
                break;
            }
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// Reads a whole file of unknown length (mountinfo) in page-sized reads; procfs
/// reports a size of 0, which would make `read_to_string` start with tiny reads.
pub(crate) fn read_all(path: &Path) -> io::Result<String> {
    let mut bytes = Vec::with_capacity(16 << 10);
    read_rest(open(path)?, &mut bytes)?;
    // Copied again only when it is not UTF-8.
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Joins an absolute path as the process sees it (`/sys/fs/cgroup/...`) onto the probe's
/// root, so tests can point the probe at a fixture tree.
pub(crate) fn under(root: &Path, absolute: &str) -> PathBuf {
    let mut p = PathBuf::with_capacity(root.as_os_str().len() + absolute.len() + 24);
    p.push(root);
    p.push(absolute.trim_start_matches('/'));
    p
}

/// Whether `path` is a directory.
pub(crate) fn is_dir(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

/// Whether `path` exists.
pub(crate) fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel does with a long `cgroup.procs`: a few records per read, each
    /// read shorter than asked for, until the end.
    struct Pieces<'a>(&'a [u8]);

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(100);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// A file in a fixture tree (`doctor --root`) with `bytes`, read by `read_small`.
    fn small(name: &str, bytes: &[u8]) -> Result<String, String> {
        let path = coldstart_test_support::temp_file(name);
        std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
        let mut buf = [0; BUF];
        read_small(&path, &mut buf)
            .map(str::to_owned)
            .map_err(|e| e.to_string())
    }

    /// An odd byte in a value, or a value cut at the buffer's end, is not the value:
    /// `67\xff108864` read as `67` made a 67-byte budget.
    #[test]
    fn a_file_that_is_not_text_or_whose_line_does_not_fit_is_an_error() {
        assert_eq!(
            small("bad-byte", b"67\xff108864\n"),
            Err("not UTF-8 text (byte 3)".to_owned())
        );
        assert_eq!(
            small(
                "cut-character",
                "max 100000\u{e9}".as_bytes().split_last().unwrap().1
            ),
            Err("not UTF-8 text (byte 11)".to_owned())
        );
        let long = vec![b'1'; BUF + 10];
        assert_eq!(
            small("long", &long),
            Err(format!("a line longer than {BUF} bytes"))
        );
        assert_eq!(
            small("value", b"max 100000\n"),
            Ok("max 100000\n".to_owned())
        );
        // Longer than the buffer, in lines: the whole lines, the cut one left out, also
        // where the cut falls inside a character.
        let mut stat = String::new();
        while stat.len() < BUF - 20 {
            stat.push_str("cache 4096\n");
        }
        let kept = stat.clone();
        stat.push_str(
            "hierarchical\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}_limit 1\n",
        );
        assert_eq!(small("stat", stat.as_bytes()), Ok(kept));
    }

    #[test]
    fn read_rest_reads_pieces_to_the_end() {
        let text: Vec<u8> = (0..1000)
            .flat_map(|p| format!("{p}\n").into_bytes())
            .collect();
        let mut bytes = b"before ".to_vec();
        read_rest(Pieces(&text), &mut bytes).unwrap();
        assert_eq!(bytes[7..], text[..]);
    }

    #[test]
    fn read_rest_stops_past_the_limit() {
        let mut bytes = Vec::new();
        let e = read_rest(io::repeat(0), &mut bytes).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(bytes.len() as u64, MAX_TEXT + 1);
    }
}

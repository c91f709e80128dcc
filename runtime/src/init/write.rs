/*!
Writes the profile `COLDSTART_PROFILE_OUT` asks for, once the work after the first
response is done: whole or not at all for a file (written beside it and renamed), in
place for a device, a FIFO or a file a container bind-mounts, and through the
descriptor for `/dev/stdout` and its kind.

It runs on a thread of coldstart's own, not on the runtime's (where no thread can be
made, a task limit reached, it runs where it is asked, on a runtime thread: a FIFO
nobody reads holds that thread), and never fails the program: a path it cannot
write is said in one line by the caller.
*/

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use super::{PROFILE_OUT, path_setting, profile};

/// Where to write the profile: `COLDSTART_PROFILE_OUT`, unless unset or blank (as
/// every setting's blank value is). A relative path is taken from the directory the
/// program started in, as read at start-up: the body may change directory before the
/// profile is written.
pub(super) fn profile_out() -> Option<PathBuf> {
    static OUT: OnceLock<Option<PathBuf>> = OnceLock::new();
    OUT.get_or_init(|| {
        let path = PathBuf::from(path_setting(PROFILE_OUT)?);
        Some(std::path::absolute(&path).unwrap_or(path))
    })
    .clone()
}

/// Clears `O_NONBLOCK` on `file`, opened with it so that the open does not wait: the
/// write then goes whole to a reader slower than the pipe's buffer.
fn blocking(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(2) reading and setting the status flags of a descriptor `file`
    // owns, open for the call's length.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Writes beside the target and renames, so a reader never sees half a profile. The
/// file beside it is this write's own (process id, the nanoseconds of the time and a
/// count, created new): two processes writing one path (replicas on a shared volume,
/// which in containers often have the same process id) each rename a whole file. A
/// link is followed (one to a file not there yet too), so the file it names is
/// written, not the link replaced. Where no file can be made beside the target (a
/// read-only directory) or a rename cannot replace it (a file bind-mounted into a
/// container: `EBUSY`), the target is written in place. So is a character device or a
/// FIFO, whose open does not wait for a reader (none is an error). A folder, a block
/// device or a socket is refused.
pub(super) fn write_profile(path: &std::path::Path) -> Result<(), (PathBuf, std::io::Error)> {
    use std::io::Write as _;
    static WRITES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let text = profile().to_string();
    // A descriptor (`/dev/stdout` with stdout sent to a file, as a shell's `> run.log`
    // does): followed as a link, it names that file, which a rename would replace,
    // losing what was written to it and all that comes after. One of this process's
    // is written through, where its next writes go on after the profile; another's
    // is appended to, as `>>` would. So is one a link leads to (`ln -s /dev/stdout
    // /app/profile`, as images link their log files to stdout).
    match linked_descriptor(path) {
        Some(Descriptor::Own(fd)) => {
            // What std holds of stdout goes first, so the profile follows it.
            if fd == 1 {
                let _ = std::io::stdout().flush();
            }
            // SAFETY: only duplicated (`dup` fails on a descriptor that is not open),
            // never closed here.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            return borrowed
                .try_clone_to_owned()
                .and_then(|owned| std::fs::File::from(owned).write_all(text.as_bytes()))
                .map_err(|e| (path.to_path_buf(), e));
        }
        Some(Descriptor::Another) => {
            return write_in_place(path, std::fs::File::options().append(true), &text)
                .map_err(|e| (path.to_path_buf(), e));
        }
        None => {}
    }
    let target = std::fs::canonicalize(path)
        .or_else(|_| {
            let linked = std::fs::read_link(path)?;
            Ok::<_, std::io::Error>(path.parent().map_or(linked.clone(), |dir| dir.join(linked)))
        })
        .unwrap_or_else(|_| path.to_path_buf());
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(&target).map(|meta| meta.file_type()) {
        // A character device (`/dev/null`, a terminal) or a FIFO: written in place,
        // not renamed over, which would make the device a file. A FIFO with no reader
        // is an error at once (the open does not wait); a reader is then waited for
        // as any writer would wait.
        Ok(kind) if kind.is_char_device() || kind.is_fifo() => {
            return write_in_place(&target, std::fs::File::options().write(true), &text)
                .map_err(|e| (path.to_path_buf(), e));
        }
        Ok(kind) if !kind.is_file() => {
            let what = format!("is {}", coldstart_bootstrap::file::what_it_is(kind));
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
            return Err((path.to_path_buf(), e));
        }
        _ => {}
    }
    let mut tmp = target.as_os_str().to_owned();
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    tmp.push(format!(".{}.{nanos}.{n}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let beside = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&tmp);
    if let Err(e) = &beside
        && matches!(
            e.kind(),
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
        )
    {
        return std::fs::write(&target, text.as_bytes()).map_err(|e| (path.to_path_buf(), e));
    }
    let written = beside.and_then(|mut file| {
        // A profile replaced keeps its permissions: the new file would have the
        // umask's (a 0600 profile came back 0644). Its owner stays this process's.
        if let Ok(kept) = std::fs::metadata(&target) {
            file.set_permissions(kept.permissions())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| match std::fs::rename(&tmp, &target) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let _ = std::fs::remove_file(&tmp);
            std::fs::write(&target, text.as_bytes())
        }
        other => other,
    });
    renamed.map_err(|e| {
        // Half a profile beside the target helps nobody; one of the same name that
        // this write did not create is another's, left alone.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(&tmp);
        }
        (path.to_path_buf(), e)
    })
}

/// Writes `text` to what `at` names, opened with `options` without waiting (a FIFO
/// with no reader is an error at once, not a wait), then written as any writer would,
/// waiting for the reader.
fn write_in_place(
    at: &std::path::Path,
    options: &mut std::fs::OpenOptions,
    text: &str,
) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = options.custom_flags(libc::O_NONBLOCK).open(at)?;
    blocking(&file)?;
    file.write_all(text.as_bytes())
}

/// A path as a line shows it: line breaks and controls escaped, so one line stays one.
pub(super) fn shown(path: &std::path::Path) -> String {
    coldstart_bootstrap::plan::settings::OneLine(&path.to_string_lossy()).to_string()
}

/// A descriptor a path names.
#[derive(Debug, PartialEq, Eq)]
enum Descriptor {
    /// One of this process's: `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`,
    /// `/proc/self/fd/N`, `/proc/thread-self/fd/N`, `/proc/<this pid>/fd/N`.
    Own(std::os::fd::RawFd),
    /// Another process's: `/proc/<pid>/fd/N`.
    Another,
}

/// The descriptor `path` names, itself or through the links it leads through, one at
/// a time (at most 40, the kernel's own bound): `/app/profile` linked to `/dev/stdout`
/// names standard output, which, followed to its end by `canonicalize`, is the file
/// stdout was sent to, renamed over.
fn linked_descriptor(path: &std::path::Path) -> Option<Descriptor> {
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        // Its folder resolved too: a relative link (`../proc/self/fd/1`) or a folder
        // linked to `/proc/self/fd` names a descriptor by another spelling, and the
        // next link read is the descriptor's own, to the file it writes.
        let resolved = || {
            let folder = std::fs::canonicalize(at.parent()?).ok()?;
            descriptor(&folder.join(at.file_name()?))
        };
        if let Some(named) = descriptor(&at).or_else(resolved) {
            return Some(named);
        }
        let next = std::fs::read_link(&at).ok()?;
        at = match at.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    None
}

/// The descriptor `path` names, if it names one.
fn descriptor(path: &std::path::Path) -> Option<Descriptor> {
    // `dev/fd/3` from the working directory is a file of that name.
    if !path.is_absolute() {
        return None;
    }
    let steps: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(step) => step.to_str(),
            _ => None,
        })
        .collect();
    // Digits alone, as the kernel names them: `-1` made std's `borrow_raw` panic on
    // the profile's thread, and the end of `main` waited for it for good.
    let own = |fd: &str| {
        fd.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| fd.parse().ok())
            .flatten()
            .map(Descriptor::Own)
    };
    match steps.as_slice() {
        ["dev", "stdout"] => Some(Descriptor::Own(1)),
        ["dev", "stderr"] => Some(Descriptor::Own(2)),
        ["dev", "fd", fd] => own(fd),
        ["proc", "self" | "thread-self", "fd", fd] => own(fd),
        ["proc", pid, "fd", fd] if pid.parse() == Ok(std::process::id()) => own(fd),
        ["proc", _, "fd", _] => Some(Descriptor::Another),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A profile written over one keeps its permissions.
    #[test]
    fn a_rewritten_profile_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = coldstart_test_support::temp_dir("profile-mode");
        let path = dir.join("init.profile");
        for mode in [0o600, 0o640] {
            std::fs::write(&path, "old").unwrap_or_else(|e| panic!("{e}"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("{e}"));
            write_profile(&path).unwrap_or_else(|(_, e)| panic!("{e}"));
            let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(meta.permissions().mode() & 0o777, mode);
            assert_eq!(
                std::fs::read_to_string(&path).unwrap_or_default(),
                profile().to_string()
            );
        }
    }

    /// Two writers of one path (two threads here, as two processes would be) never
    /// clash on the file beside it: every write succeeds and every read finds a
    /// whole profile. With one fixed name beside the target, a rename found it gone
    /// or half written.
    #[test]
    fn writers_of_one_profile_path_each_rename_a_whole_file() {
        let dir = coldstart_test_support::temp_dir("profile-writers");
        let path = dir.join("init.profile");
        let whole = profile().to_string();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    (0..200)
                        .filter_map(|_| write_profile(&path).err())
                        .map(|(_, e)| e.to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut reads = 0;
        while !writers.iter().all(std::thread::JoinHandle::is_finished) {
            if let Ok(text) = std::fs::read_to_string(&path) {
                assert_eq!(text, whole);
                reads += 1;
            }
        }
        for writer in writers {
            let failed = writer
                .join()
                .unwrap_or_else(|_| panic!("a writer panicked"));
            assert!(failed.is_empty(), "{failed:?}");
        }
        // At least one read checked, whatever the timing.
        let last = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(last, whole);
        reads += 1;
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            ["init.profile"],
            "nothing left beside it ({reads} reads)"
        );
    }

    /// A profile path that is a FIFO (or a device) is written in place, without
    /// waiting for a reader, and stays what it is: renamed over, a FIFO (or
    /// `/dev/null`, as root) became a regular file holding the profile. A folder or a
    /// socket is refused.
    #[test]
    fn a_profile_path_that_is_no_regular_file_is_written_in_place_or_refused() {
        use std::os::unix::fs::FileTypeExt;
        let dir = coldstart_test_support::temp_dir("profile-fifo");
        let fifo = dir.join("init.profile");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: mkfifo(3) with a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // No reader: an error at once, not a wait.
        let (_, e) = write_profile(&fifo).expect_err("a FIFO with no reader");
        assert_eq!(e.raw_os_error(), Some(libc::ENXIO), "{e}");
        // With a reader: the profile, through the FIFO.
        let reading = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo))
        };
        // Until the reader has opened it, the write finds none.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while write_profile(&fifo).is_err() {
            assert!(Instant::now() < deadline, "never written to the reader");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let read = reading
            .join()
            .unwrap_or_else(|_| panic!("the reader panicked"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read, profile().to_string());
        let kind = std::fs::metadata(&fifo)
            .unwrap_or_else(|e| panic!("{e}"))
            .file_type();
        assert!(kind.is_fifo(), "still a FIFO");
        let (_, e) = write_profile(&dir).expect_err("a directory is refused");
        assert_eq!(e.to_string(), "is a directory");
        let socket = dir.join("socket");
        let _listener =
            std::os::unix::net::UnixListener::bind(&socket).unwrap_or_else(|e| panic!("{e}"));
        let (_, e) = write_profile(&socket).expect_err("a socket is refused");
        assert_eq!(e.to_string(), "is a socket");
        let left = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .count();
        assert_eq!(left, 2, "nothing made beside them");
    }

    /// `/dev/stdout` with stdout sent to a file (`> run.log`), here `/dev/fd/N` of a
    /// file this test holds: written through the descriptor, the file kept, and what
    /// the program writes next goes after the profile. Followed as a link, it was
    /// renamed over, and the log lost with all that was written to it after.
    #[test]
    fn a_profile_path_naming_a_descriptor_is_written_through_it() {
        use std::io::Write as _;
        use std::os::fd::AsRawFd as _;
        use std::os::unix::fs::MetadataExt as _;
        let log = coldstart_test_support::temp_file("run.log");
        let mut held = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        held.write_all(b"a log line\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let inode = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.ino()).ok();
        let before = inode(&log);
        let fd = std::path::PathBuf::from(format!("/dev/fd/{}", held.as_raw_fd()));
        write_profile(&fd).unwrap_or_else(|(_, e)| panic!("{e}"));
        held.write_all(b"after\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            inode(&log),
            before,
            "the same file, not one renamed over it"
        );
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, format!("a log line\n{}after\n", profile()));
        // A link to it, and a relative link to that link: the same descriptor.
        let dir = coldstart_test_support::temp_dir("profile-linked-descriptor");
        std::os::unix::fs::symlink(&fd, dir.join("profile")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("profile", dir.join("again")).unwrap_or_else(|e| panic!("{e}"));
        // A folder linked to `/proc/self/fd`, and a relative link through `..` into
        // it: the descriptor by other spellings.
        std::os::unix::fs::symlink("/proc/self/fd", dir.join("fds"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.join("sub")).unwrap_or_else(|e| panic!("{e}"));
        let number = held.as_raw_fd();
        std::os::unix::fs::symlink(format!("../fds/{number}"), dir.join("sub/up"))
            .unwrap_or_else(|e| panic!("{e}"));
        let through = [format!("fds/{number}"), "sub/up".to_owned()];
        for link in ["profile", "again"]
            .into_iter()
            .chain(through.iter().map(String::as_str))
        {
            write_profile(&dir.join(link)).unwrap_or_else(|(_, e)| panic!("{e}"));
        }
        assert_eq!(inode(&log), before, "not renamed over through a link");
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text,
            format!("a log line\n{0}after\n{0}{0}{0}{0}", profile()),
            "written through the links"
        );
        assert_eq!(
            linked_descriptor(&dir.join("again")),
            Some(Descriptor::Own(held.as_raw_fd()))
        );
        // `/var/../dev/stdout` is read as steps, `var`, `dev`, `stdout`: not a
        // descriptor by name, but `/dev/stdout` is itself a link, to `/proc/self/fd/1`.
        if std::fs::read_link("/dev/stdout").is_ok() {
            assert_eq!(
                linked_descriptor("/var/../dev/stdout".as_ref()),
                Some(Descriptor::Own(1))
            );
        }
        let me = format!("/proc/{}/fd/7", std::process::id());
        for (path, named) in [
            ("/dev/stdout", Some(Descriptor::Own(1))),
            ("/dev/stderr", Some(Descriptor::Own(2))),
            ("/proc/self/fd/9", Some(Descriptor::Own(9))),
            (me.as_str(), Some(Descriptor::Own(7))),
            ("/proc/1/fd/2", Some(Descriptor::Another)),
            ("/dev/null", None),
            ("/dev/fd/x", None),
            ("/dev/fd/-1", None),
            ("/proc/self/fd/-1", None),
            ("/dev/fd/+3", None),
            ("/dev/fd/99999999999", None),
            ("/var/lib/app/init.profile", None),
            ("dev/fd/3", None),
            ("./proc/self/fd/5", None),
        ] {
            assert_eq!(descriptor(path.as_ref()), named, "{path}");
        }
    }
}

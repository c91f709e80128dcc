//! Temporary directories and files that go when the test does.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A new, empty directory whose name begins `coldstart-test-{name}-`.
///
/// # Panics
///
/// When the directory cannot be created: the test cannot go on.
pub fn temp_dir(name: &str) -> TempDir {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("coldstart-test-{name}-{}-{n}", std::process::id()));
    // Left by an earlier process of the same pid that was killed.
    let _ = std::fs::remove_dir_all(&path);
    if let Err(e) = std::fs::create_dir_all(&path) {
        panic!("cannot create {}: {e}", path.display());
    }
    TempDir { path }
}

/// A copy of `program` that any user may run, named as it is, in a new [`TempDir`]
/// that any user may search: for a test that runs it as another user (the target
/// directory, under a home of mode 0700, may be out of their reach). Returns the
/// directory and the copy's path.
///
/// # Panics
///
/// As [`temp_dir`], and when the copy cannot be made.
pub fn runnable_by_anyone(program: &Path) -> (TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let name = program.file_name().unwrap_or(OsStr::new("program"));
    let dir = temp_dir(&format!("runnable-{}", name.to_string_lossy()));
    let copy = dir.join(name);
    std::fs::copy(program, &copy).unwrap();
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(&*dir, open.clone()).unwrap();
    std::fs::set_permissions(&copy, open).unwrap();
    (dir, copy)
}

/// The path of a file named `name`, not yet created, alone in a new [`TempDir`].
///
/// # Panics
///
/// As [`temp_dir`].
pub fn temp_file(name: &str) -> TempFile {
    let dir = temp_dir(name);
    let path = dir.join(name);
    TempFile { path, _dir: dir }
}

/// Makes a FIFO at `path` (with `mkfifo`), for tests of what a path that is not a
/// file does: with no writer, a plain `open` of it waits forever.
///
/// # Panics
///
/// When it cannot be made.
pub fn fifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(path)
        .status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "cannot make a FIFO at {}",
        path.display()
    );
}

/// See [`temp_dir`]. Derefs to its path.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<OsStr> for TempDir {
    fn as_ref(&self) -> &OsStr {
        self.path.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// See [`temp_file`]. Derefs to the file's path; its directory goes when it is dropped.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    _dir: TempDir,
}

impl std::ops::Deref for TempFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempFile {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<OsStr> for TempFile {
    fn as_ref(&self) -> &OsStr {
        self.path.as_os_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_has_a_directory_of_its_own_removed_with_what_it_holds() {
        let a = temp_dir("same");
        let b = temp_dir("same");
        assert_ne!(*a, *b);
        std::fs::create_dir(a.join("sub")).unwrap();
        std::fs::write(a.join("sub/file"), "x").unwrap();
        let kept = a.to_path_buf();
        drop(a);
        assert!(!kept.exists());
        assert!(b.is_dir());
    }

    #[test]
    fn a_file_goes_with_its_directory() {
        let file = temp_file("given.profile");
        assert_eq!(file.file_name().unwrap(), "given.profile");
        assert!(!file.exists());
        std::fs::write(&file, "x").unwrap();
        let dir = file.parent().unwrap().to_path_buf();
        drop(file);
        assert!(!dir.exists());
    }
}

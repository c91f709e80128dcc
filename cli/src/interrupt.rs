//! Cleaning up on Ctrl-C (SIGINT), SIGTERM, SIGHUP (the terminal closed, the SSH
//! session dropped) or SIGQUIT: the processes the tool started (and theirs) are
//! killed, the cgroups it created and its temporary files removed before it exits
//! with 128 plus the signal's number (130 after Ctrl-C).
//!
//! Drops do not run when a signal ends a process, so the children and cgroups alive
//! at any moment are kept in a registry. The signal handler only writes one byte to
//! a pipe (async-signal-safe); a thread reading the pipe does the cleanup.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Held while a child is released to `exec` and recorded, and by the clean-up from
/// its start to the exit: no child is released that the clean-up would miss.
static LAUNCHING: Mutex<()> = Mutex::new(());
static CGROUPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Files the tool is writing outside the temporary directory (a profile written beside
/// its `--out` before the rename), removed at Ctrl-C.
static FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set once a signal has started the clean-up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The pipe's write end, once [`install`] has run; -1 before.
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// Set by the first [`install`]: it is tried once, and a failure said once.
static TRIED: AtomicBool = AtomicBool::new(false);

/// Installs the handlers for SIGINT, SIGTERM, SIGHUP and SIGQUIT, once.
pub fn install() {
    if TRIED.swap(true, Ordering::AcqRel) {
        return;
    }
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    if WAKE
        .compare_exchange(-1, fds[1], Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let read_end = fds[0];
    let spawned = std::thread::Builder::new()
        .name("clean-up".into())
        .spawn(move || {
            let mut byte = 0u8;
            // Read again when a signal interrupts the read itself (`EINTR`): this thread
            // gone, every later Ctrl-C would be lost, with children and cgroups left.
            let n = loop {
                // SAFETY: reading one byte into a local from a descriptor this thread owns.
                let n = unsafe { libc::read(read_end, (&raw mut byte).cast(), 1) };
                if n >= 0
                    || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    break n;
                }
            };
            if n == 1 {
                INTERRUPTED.store(true, Ordering::Release);
                let had_cgroups = !CGROUPS.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
                let left = clean_up();
                coldstart_bootstrap::say!("\n{}", interrupted(had_cgroups, &left));
                std::process::exit(128 + i32::from(byte));
            }
        });
    // No thread can be made (a `pids.max` reached): the run goes on without the
    // clean-up, and says so; a signal then has its default effect.
    if let Err(e) = spawned {
        WAKE.store(-1, Ordering::Release);
        // SAFETY: closing the two descriptors pipe2 made above, used by nothing else.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        coldstart_bootstrap::say!(
            "warning: no thread for the clean-up on Ctrl-C ({e}); an interrupted run may leave its processes and cgroups behind"
        );
        return;
    }
    // SAFETY: the handler is async-signal-safe (one write to a pipe); sigaction
    // with a zeroed struct and a valid handler address.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        // Reads and waits elsewhere in the tool go on after the handler.
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        for signo in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::sigaction(signo, &action, std::ptr::null_mut());
        }
    }
}

/// Writes the signal's number (all four fit a byte) for the clean-up thread.
extern "C" fn on_signal(signo: libc::c_int) {
    let fd = WAKE.load(Ordering::Acquire);
    if fd >= 0 {
        let byte = u8::try_from(signo).unwrap_or(libc::SIGTERM as u8);
        // SAFETY: write(2) is async-signal-safe; one byte from a local.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
}

/// What the clean-up says: the cgroups it could not remove are named, and none where
/// it had none (`build`).
fn interrupted(had_cgroups: bool, left: &[PathBuf]) -> String {
    if !had_cgroups {
        return "interrupted: the programs started were stopped".into();
    }
    if left.is_empty() {
        return "interrupted: the programs started were stopped and the cgroups removed".into();
    }
    let left: Vec<String> = left.iter().map(|d| d.display().to_string()).collect();
    format!(
        "interrupted: the programs started were stopped; these cgroups could not be removed (remove them with rmdir once empty): {}",
        left.join(", ")
    )
}

/// Stops what the tool started and removes its cgroups and files; returns the cgroup
/// directories still there.
fn clean_up() -> Vec<PathBuf> {
    // Held until the process exits: no launch can start after this point.
    std::mem::forget(LAUNCHING.lock().unwrap_or_else(|p| p.into_inner()));
    for pid in CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if let Ok(pid) = libc::pid_t::try_from(*pid) {
            let mut status = 0;
            // SAFETY: kill(2) and waitpid(2) on a child of this process that has not
            // been reaped, and on the process group it leads (what it started);
            // reaping it here lets its cgroup be removed (a zombie still holds it),
            // and the process exits right after.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
        }
    }
    // And what they started outside their process groups, given back to this process.
    crate::measure::sweep_strays(None);
    remove_temporary_files();
    remove_files_being_written();
    let mut left = Vec::new();
    for dir in CGROUPS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        // Anything still in a cgroup of ours is ours.
        crate::cgroup::kill_procs(dir);
        // The killed processes leave the cgroup as they exit.
        let removed = (0..50).any(|_| {
            let gone = std::fs::remove_dir(dir).is_ok() || !dir.exists();
            if !gone {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            gone
        });
        if !removed && !left.contains(dir) {
            left.push(dir.clone());
        }
    }
    left
}

/// The files [`file_being_written`] recorded and nothing has forgotten since.
fn remove_files_being_written() {
    for file in FILES.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        let _ = std::fs::remove_file(file);
    }
}

/// Records a file the tool is writing outside the temporary directory, removed at
/// Ctrl-C unless [`file_written`] forgets it first.
pub(crate) fn file_being_written(path: &std::path::Path) {
    FILES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(path.to_owned());
}

/// Forgets a file [`file_being_written`] recorded: renamed into place, or removed.
pub(crate) fn file_written(path: &std::path::Path) {
    FILES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|f| f != path);
}

/// The [`temporary_file`]s, which their owners' drops would have removed.
fn remove_temporary_files() {
    let ours = temporary_prefix();
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&ours) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The path of this process's temporary file `name` (the programs' stderr, a profile):
/// in the temporary directory, named so that the Ctrl-C clean-up removes it.
pub fn temporary_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}{name}", temporary_prefix()))
}

/// How the names of this process's temporary files begin.
fn temporary_prefix() -> String {
    format!("coldstart-measure-{}-", std::process::id())
}

/// Waits for ever once a signal has started the clean-up, which ends the process
/// with 130: a run that failed because the clean-up killed and reaped its program
/// (no child to wait for) is not an error to report.
pub fn wait_if_interrupted() {
    if INTERRUPTED.load(Ordering::Acquire) {
        loop {
            std::thread::park();
        }
    }
}

/// Held while a child is released and recorded (see [`LAUNCHING`]); the handlers
/// installed first, as for [`child_started`], so that a signal while the first child
/// starts finds them.
pub(crate) fn launching() -> std::sync::MutexGuard<'static, ()> {
    install();
    LAUNCHING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records a child the tool started. The handlers are installed first where they are
/// not yet: a program using the harness's parts without the tool's `main` (a test
/// binary, a benchmark) gets the clean-up at Ctrl-C too.
pub(crate) fn child_started(pid: u32) {
    install();
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
}

/// Forgets a child once it has been reaped.
pub(crate) fn child_reaped(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|p| *p != pid);
}

/// A helper program the tool runs (`wrk`, cargo for `build`), recorded for the
/// clean-up from its start until it is reaped, so that a signal to the tool alone
/// (`kill PID` from another shell, which its process group does not get) stops it
/// too; dropped before it has ended (an error on the way), it is killed and reaped.
pub struct Helper(Option<std::process::Child>);

impl Helper {
    /// Starts `command`, recorded.
    ///
    /// # Errors
    ///
    /// When it cannot be started.
    pub fn spawn(command: &mut std::process::Command) -> std::io::Result<Helper> {
        let _launching = launching();
        let child = command.spawn()?;
        child_started(child.id());
        Ok(Helper(Some(child)))
    }

    /// Its exit status if it has ended, as [`std::process::Child::try_wait`].
    ///
    /// # Errors
    ///
    /// As `try_wait`.
    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        match &mut self.0 {
            Some(child) => child.try_wait(),
            None => Ok(None),
        }
    }

    /// Waits for it to end, with what it wrote to the pipes it was given.
    ///
    /// # Errors
    ///
    /// As [`std::process::Child::wait_with_output`].
    pub fn wait_with_output(mut self) -> std::io::Result<std::process::Output> {
        let child = self.0.take().ok_or(std::io::ErrorKind::NotFound)?;
        let pid = child.id();
        let output = child.wait_with_output();
        child_reaped(pid);
        output
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
            child_reaped(child.id());
        }
    }
}

/// Records cgroup directories the tool created; the handlers installed first, as for
/// [`child_started`].
pub(crate) fn cgroup_created(dirs: impl IntoIterator<Item = PathBuf>) {
    install();
    CGROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(dirs);
}

/// Forgets cgroup directories once removed.
pub(crate) fn cgroup_removed(dirs: &[PathBuf]) {
    CGROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|d| !dirs.contains(d));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file recorded as being written goes at Ctrl-C; one forgotten does not.
    #[test]
    fn files_being_written_are_removed_unless_written() {
        let (going, kept) = (temporary_file("going.tmp"), temporary_file("kept.tmp"));
        std::fs::write(&going, "half").unwrap();
        std::fs::write(&kept, "whole").unwrap();
        file_being_written(&going);
        file_being_written(&kept);
        file_written(&kept);
        remove_files_being_written();
        assert!(!going.exists());
        assert!(kept.exists());
        std::fs::remove_file(&kept).unwrap();
    }

    /// A helper is recorded until it is reaped; one dropped before its end is killed.
    #[test]
    fn a_helper_is_recorded_while_it_runs_and_killed_when_dropped() {
        use std::process::{Command, Stdio};
        let recorded = |pid: u32| CHILDREN.lock().unwrap().contains(&pid);
        let echo = Helper::spawn(Command::new("echo").arg("hi").stdout(Stdio::piped())).unwrap();
        let pid = echo.0.as_ref().unwrap().id();
        assert!(recorded(pid));
        let out = echo.wait_with_output().unwrap();
        assert_eq!(out.stdout, b"hi\n");
        assert!(!recorded(pid));
        let mut sleeping = Helper::spawn(Command::new("sleep").arg("60")).unwrap();
        let pid = sleeping.0.as_ref().unwrap().id();
        assert!(recorded(pid) && sleeping.try_wait().unwrap().is_none());
        drop(sleeping);
        assert!(!recorded(pid));
        // Reaped: no process of that id is a child of this one any more.
        // SAFETY: waitpid(2) without blocking, on an id this test started.
        let waited =
            unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) };
        assert_eq!(waited, -1, "killed and reaped");
    }

    #[test]
    fn cgroups_left_behind_are_named() {
        assert!(interrupted(true, &[]).ends_with("and the cgroups removed"));
        assert!(interrupted(false, &[]).ends_with("the programs started were stopped"));
        let said = interrupted(true, &[PathBuf::from("/sys/fs/cgroup/cpu/x")]);
        assert!(said.contains("could not be removed"), "{said}");
        assert!(said.ends_with(": /sys/fs/cgroup/cpu/x"), "{said}");
    }
}

//! Starting a program to measure: held after its fork (and joining its cgroup) until
//! the clock starts, then released to `exec`.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

use super::reap::{KillOnDrop, RUN_MARK, become_subreaper};
use super::{RUN_TIMEOUT, Target};
use crate::cgroup::TempCgroup;

/// A new [`temporary_file`](crate::interrupt::temporary_file) `name` for a program's
/// stderr, and its path. Made new (`O_EXCL`, readable by its owner only): the name
/// can be foreseen, and in a shared temporary directory a link planted there would
/// otherwise have this tool, often run as root, write through it.
pub(super) fn stderr_file(name: &str) -> anyhow::Result<(File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Numbered: one process may run several at once (emulators, in tests).
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = crate::interrupt::temporary_file(&format!("{n}-{name}"));
    // One of an earlier process with this pid, killed before its clean-up.
    let _ = std::fs::remove_file(&path);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok((file, path))
}

/// Held from a launch's fork to its child's exec: one launch at a time in a process
/// (the emulator's start takes it too, before `launching()`, in the same order).
/// A child waits before `exec` for its go byte, holding a copy of every descriptor the
/// process had at its fork, among them another launch's pipe on which `spawn` learns
/// that its child exec'd. Two launches at once (tests run in parallel) could each wait
/// on the other: one's `spawn` for the end of that pipe, the other's go byte for the
/// first to finish.
pub(crate) static FORKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts `target` with `env` added, inside `cgroup` if given, and returns it with
/// the instant it was released to `exec` (see the module documentation).
pub(super) fn launch(
    target: &Target,
    cgroup: Option<&TempCgroup>,
    env: &[(&str, String)],
    stderr: File,
) -> anyhow::Result<(KillOnDrop, Instant)> {
    let _forking = FORKING.lock().unwrap_or_else(|p| p.into_inner());
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;

    become_subreaper();
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mark = format!(
        "{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut command = std::process::Command::new(&target.program);
    command
        .args(&target.args)
        .envs(target.env.iter().map(|(k, v)| (k, v)))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(RUN_MARK, &mark)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        // A group of its own, so that what it starts (a wrapper's server) is killed
        // with it.
        .process_group(0);
    if let Some(cgroup) = cgroup {
        cgroup.join_before_exec(&mut command)?;
    }
    let (ready_fd, go_fd): (RawFd, RawFd) = (ready_w.as_raw_fd(), go_r.as_raw_fd());
    let (parents_ready, parents_go): (RawFd, RawFd) = (ready_r.as_raw_fd(), go_w.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec (after joining the
    // cgroup) and only makes async-signal-safe system calls (close, write, read) on
    // descriptors that stay open until the spawn has returned; it does not allocate.
    unsafe {
        command.pre_exec(move || {
            // The parent's ends, closed here: with a copy of the go end of its own the
            // child would wait for ever once the parent is gone (a Ctrl-C before the
            // go byte); without one, it reads the end of the pipe and exits.
            libc::close(parents_ready);
            libc::close(parents_go);
            let mut byte = 0u8;
            if libc::write(ready_fd, b"r".as_ptr().cast(), 1) != 1
                || libc::read(go_fd, (&raw mut byte).cast(), 1) != 1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // `spawn` returns only once the child has exec'd, and the child waits for the go
    // byte before exec: spawn on a helper thread, release the child from here.
    let spawner = std::thread::spawn(move || command.spawn());
    // A child that fails before it is ready (joining the cgroup) makes `spawn` return
    // at once, while this end of the pipe stays open: look at both.
    let asked = Instant::now();
    while !wait_readable(&ready_r, Duration::from_millis(5)) {
        let err = if spawner.is_finished() {
            match spawner.join() {
                Ok(Err(e)) => anyhow!(e),
                _ => anyhow!("the child never got ready to exec"),
            }
        } else if asked.elapsed() > RUN_TIMEOUT {
            // Not joined: `spawn` returns only once the child has exec'd.
            anyhow!("the child never got ready to exec")
        } else {
            continue;
        };
        return Err(err.context(format!("cannot start {}", target.program.display())));
    }
    if cgroup.is_some() {
        // Let the previous run's CPU use age out of the CFS period, so every run
        // starts with a full quota, as a freshly started container does.
        std::thread::sleep(Duration::from_micros(crate::cgroup::PERIOD_US + 10_000));
    }
    // Released and recorded as one step, so a Ctrl-C clean-up never misses it.
    let _launching = crate::interrupt::launching();
    let start = Instant::now();
    write_byte(&go_w)?;
    let child = spawner
        .join()
        .map_err(|_| anyhow!("spawner thread panicked"))?
        .with_context(|| format!("cannot start {}", target.program.display()))?;
    crate::interrupt::child_started(child.id());
    let child = KillOnDrop { child, mark };
    drop((ready_w, go_r));
    Ok((child, start))
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Waits up to `timeout` for `fd` to become readable; whether it did.
pub(super) fn wait_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n == 1 && pfd.revents & libc::POLLIN != 0
}

fn write_byte(fd: &OwnedFd) -> anyhow::Result<()> {
    // SAFETY: writing one byte from a static buffer to a descriptor we own.
    if unsafe { libc::write(fd.as_raw_fd(), b"g".as_ptr().cast(), 1) } != 1 {
        return Err(std::io::Error::last_os_error()).context("cannot release the child");
    }
    Ok(())
}

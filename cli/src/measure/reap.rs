//! Every process a run starts ends with the run: the child, its process group, and
//! what left the group (a daemon's `setsid`), found by a mark in its environment.
//! Nothing a measurement starts may outlive it, on any path out (an error, a panic,
//! Ctrl-C through the interrupt registry).

use std::process::Child;
use std::time::{Duration, Instant};

/// Kills and reaps the child however the run ends (and, on Ctrl-C, through the
/// interrupt registry), with its process group and what left the group (a daemon's
/// `setsid`): see [`sweep_strays`].
pub(super) struct KillOnDrop {
    pub(super) child: Child,
    /// The value of [`RUN_MARK`] in the child's environment.
    pub(super) mark: String,
}

impl KillOnDrop {
    /// How the child exited, if it has: see [`exited`].
    pub(super) fn exited(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        exited(&mut self.child)
    }
}

/// How `child` exited, if it has, without reaping it (`waitid` with `WNOWAIT`): until
/// it is reaped its pid stays its own, so the process group it led is still the one
/// the drop kills. Reaped by `Child::try_wait`, the pid could be taken by another
/// process that leads a group of its own before the kill.
pub(crate) fn exited(child: &mut Child) -> std::io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::id_t::from(child.id());
    // SAFETY: an all-zero siginfo_t is a valid value of it (a plain C struct).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid(2) on our own child, into a siginfo_t owned here; WNOWAIT leaves
    // it waitable, so `Child::wait` still reaps it.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid,
            &raw mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r == -1 {
        let e = std::io::Error::last_os_error();
        // Already reaped (by a `Child::wait`): std recorded how it ended.
        return match e.raw_os_error() {
            Some(libc::ECHILD) => child.try_wait(),
            _ => Err(e),
        };
    }
    // SAFETY: waitid filled `info` for a child that changed state, or left si_pid 0.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    // The wait status `waitpid` would have given: an exit code in the second byte, or
    // the signal in the first (with 0x80 for a core dump).
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => status | 0x80,
        _ => status,
    };
    Ok(Some(std::process::ExitStatus::from_raw(raw)))
}

/// Kills `child`, which leads a process group of its own, with its group, and reaps
/// it: the interrupt registry no longer holds it.
pub(super) fn kill_group_and_reap(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the process group our unreaped child leads.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
    crate::interrupt::child_reaped(child.id());
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_group_and_reap(&mut self.child);
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            reap_group(pid);
        }
        sweep_strays(Some(&self.mark));
    }
}

/// Reaps what of the process group `pgid`, killed, came back to this process as its
/// subreaper: a program's children (a wrapper's server, a prefork server's workers)
/// whose parent ended first. Unreaped, each stays a zombie, and a long measurement
/// would fill the pid table. A member that becomes this process's child does so before
/// its parent can be reaped, so once none is left, none comes later. Gives up after
/// 2 s (one stuck in the kernel), saying so.
fn reap_group(pgid: libc::pid_t) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        // SAFETY: waitpid(2) on this process's children in the killed group; nothing
        // else waits for them (the run's own child was reaped above).
        match unsafe { libc::waitpid(-pgid, std::ptr::null_mut(), libc::WNOHANG) } {
            // None of the group is this process's child any more.
            -1 => return,
            // Some are, still dying.
            0 if Instant::now() > deadline => {
                coldstart_bootstrap::say!(
                    "warning: processes of the measured program's group {pgid} could not be reaped"
                );
                return;
            }
            0 => std::thread::sleep(Duration::from_millis(1)),
            _reaped => {}
        }
    }
}

/// The variable each run's program is started with, set to a value of that run's own:
/// what its descendants carry, and how [`sweep_strays`] tells them from this process's
/// other children.
pub(super) const RUN_MARK: &str = "COLDSTART_MEASURE_RUN";

/// Makes this process the subreaper of what it starts: a process that leaves its
/// run's process group (`setsid`) comes back to this one as its child when its parent
/// ends, instead of going to init, where nothing would stop it.
pub(super) fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl(2) with an option that takes one integer; it changes only which
        // process the orphans of this one's descendants are given to.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    });
}

/// Kills and reaps the children of this process that carry `mark` as [`RUN_MARK`]
/// (any value for `None`: every run's, at Ctrl-C): what a run's program started outside
/// its process group. Each one killed may leave strays of its own, which come back in
/// turn. Gives up after 2 s (a process that cannot be killed: another user's, or one
/// stuck in the kernel), saying how many are left.
pub(crate) fn sweep_strays(mark: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut killed: Vec<libc::pid_t> = Vec::new();
    loop {
        // SAFETY: waitpid(2) on children of this process killed below: nobody else
        // reaps them, so each pid stays its own until this reaps it. 0 is one still
        // dying; the pid, or an error, one that is gone.
        killed
            .retain(|&pid| unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0);
        for pid in own_children() {
            if killed.contains(&pid) || !carries_mark(pid, mark) {
                continue;
            }
            // SAFETY: kill(2) on a child of this process that carries a run's mark,
            // and on the process group it may lead.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            killed.push(pid);
        }
        if killed.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            coldstart_bootstrap::say!(
                "warning: {} process(es) a measured program started could not be stopped: {killed:?}",
                killed.len()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether the child `pid` has [`RUN_MARK`] set to `mark` (to anything, for `None`).
/// A zombie's environment reads as empty: it carries no mark.
fn carries_mark(pid: libc::pid_t, mark: Option<&str>) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    environ.split(|b| *b == 0).any(|var| {
        var.strip_prefix(RUN_MARK.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"="))
            .is_some_and(|value| mark.is_none_or(|m| value == m.as_bytes()))
    })
}

/// The children of this process, from `/proc/self/task/*/children` (each thread's).
fn own_children() -> Vec<libc::pid_t> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

//! Programs a test starts: killed when the test ends, their stderr read as lines.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// Starts `program` on a free port (`PORT`) in the working directory `dir` with
/// `vars`, stderr piped; waits until it says it listens.
pub fn start_server(program: &str, dir: &Path, vars: &[(&str, String)]) -> (u16, Reaper, Lines) {
    start_server_without(program, dir, vars, &[])
}

/// [`start_server`], with the variables `unset` removed from what it inherits.
pub fn start_server_without(
    program: &str,
    dir: &Path,
    vars: &[(&str, String)],
    unset: &[&str],
) -> (u16, Reaper, Lines) {
    let port = free_port();
    let mut command = Command::new(program);
    for variable in unset {
        command.env_remove(variable);
    }
    // Held by its `Reaper` from the start: a server that never says it listens is
    // killed with the failing test, not left running after it.
    command
        .current_dir(dir)
        .env("PORT", port.to_string())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::piped());
    let mut child = Reaper(spawn(&mut command));
    let mut lines = Lines::of(&mut child.0);
    lines.wait_for("listening on");
    (port, child, lines)
}

/// Starts `command`, as every function here does. A script a test has just written
/// can be busy for a moment (a process another test forked in between holds it open
/// for writing until that process execs): it is started again, up to 100 times 10 ms.
///
/// # Panics
///
/// When it cannot be started, naming the program (a tool missing was a bare "No such
/// file or directory").
fn spawn(command: &mut Command) -> std::process::Child {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            spawned => {
                return spawned.unwrap_or_else(|e| {
                    panic!("cannot start {}: {e}", command.get_program().display())
                });
            }
        }
    }
}

/// Runs `command` to its end as [`Command::output`] does (stdin null, stdout and
/// stderr captured: always piped here, whatever `command` set), for at most `within`:
/// a program that does not end fails the test and is killed, where `output()` would
/// hang the suite.
///
/// # Panics
///
/// When it cannot be started or has not ended by then.
pub fn output_within(command: &mut Command, within: Duration) -> std::process::Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    wait_with_output_within(spawn(command), within)
}

/// [`std::process::Child::wait_with_output`] for at most `within` (see
/// [`output_within`]): what it writes to the pipes it was given is read as it comes.
///
/// # Panics
///
/// When it has not ended by then, or when something it started still holds its
/// pipes then (or a second after its end, if that is later).
pub fn wait_with_output_within(
    child: std::process::Child,
    within: Duration,
) -> std::process::Output {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut child = Reaper(child);
    // As std's: a child reading a piped stdin sees its end.
    drop(child.0.stdin.take());
    // Read as they come, so that a program writing much is not stopped on a full pipe.
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read_all(child.0.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read_all(child.0.stderr.take().map(|p| Box::new(p) as _));
    let Some(status) = child.ended_within(within) else {
        child.kill();
        // What it wrote, unless something it started still holds the pipe.
        let said = crate::poll(Duration::from_secs(2), || {
            stderr.is_finished().then_some(())
        })
        .and_then(|()| stderr.join().ok())
        .unwrap_or_default();
        panic!(
            "the program did not end within {within:?} and was killed; stderr was:\n{}",
            String::from_utf8_lossy(&said)
        );
    };
    // Ended: its pipes close with it, unless something it started holds them (read
    // to their end, they would keep the test waiting as long as that runs). Within the
    // same bound, with a second at least for the readers to see the end.
    let deadline = (started + within).max(std::time::Instant::now() + Duration::from_secs(1));
    while !(stdout.is_finished() && stderr.is_finished()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        stdout.is_finished() && stderr.is_finished(),
        "the program ended ({status}), but something it started still holds its stdout or stderr after {within:?}"
    );
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs `command` to its end as [`Command::status`] does, for at most `within` (see
/// [`output_within`]).
///
/// # Panics
///
/// When it cannot be started or has not ended by then.
pub fn status_within(command: &mut Command, within: Duration) -> std::process::ExitStatus {
    Reaper(spawn(command)).wait_within(within)
}

/// The lines a child writes to stderr, read on a thread as they come.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    /// The lines read so far, each ending in a newline.
    pub seen: String,
}

impl Lines {
    /// Reads `child`'s piped stderr.
    pub fn of(child: &mut std::process::Child) -> Lines {
        use std::io::BufRead;
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Bytes, not text: a line that is not UTF-8 is shown lossily, and the
            // reading goes on (stopped, the child's next writes would fail).
            let mut reader = std::io::BufReader::new(stderr);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                let text = String::from_utf8_lossy(&line);
                if tx
                    .send(text.trim_end_matches(['\n', '\r']).to_owned())
                    .is_err()
                {
                    break;
                }
                line.clear();
            }
        });
        Lines {
            rx,
            seen: String::new(),
        }
    }

    /// Waits (at most 10 s) for a line containing `needle`; returns all seen so far.
    pub fn wait_for(&mut self, needle: &str) -> &str {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(needle) {
                        return &self.seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("`{needle}` never appeared; stderr was:\n{}", self.seen);
    }

    /// Everything written so far, waiting up to `quiet` for more.
    pub fn drain(&mut self, quiet: Duration) -> &str {
        while let Ok(line) = self.rx.recv_timeout(quiet) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        &self.seen
    }
}

/// Kills the child when dropped, so a failing test leaves no process behind.
pub struct Reaper(pub std::process::Child);

impl Reaper {
    /// Waits for the child to end, at most `within`: a test that would otherwise hang
    /// fails (and the drop kills the child).
    ///
    /// # Panics
    ///
    /// When the child has not ended by then.
    pub fn wait_within(&mut self, within: std::time::Duration) -> std::process::ExitStatus {
        self.ended_within(within)
            .unwrap_or_else(|| panic!("the child did not end within {within:?}"))
    }

    /// How the child ended, once it has, waiting at most `within`; `None` if it runs
    /// on.
    pub fn ended_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        crate::poll(within, || self.0.try_wait().ok().flatten())
    }

    /// Kills the child, if it still runs, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Whether process `pid` is gone (reaped, or a zombie: it has ended).
    fn ended(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, s)| s.starts_with('Z'))
        })
    }

    /// A server that never says it listens fails the test and is not left running
    /// after it (it was wrapped to be killed only once it had said so).
    #[test]
    fn a_server_that_never_listens_is_killed_with_the_failure() {
        let dir = crate::temp_dir("never-listens");
        let script = dir.join("server");
        std::fs::write(
            &script,
            "#!/bin/sh\necho $$ > \"$(dirname \"$0\")/pid\"\nexec sleep 600\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let failed = std::panic::catch_unwind(|| {
            start_server(script.to_str().unwrap(), &dir, &[]);
        });
        assert!(failed.is_err(), "it never said it listens");
        let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
        assert!(ended(pid.trim()), "process {} still runs", pid.trim());
    }

    /// A line that is not UTF-8 is read (lossily), and the lines after it too: the
    /// reading stopped there.
    #[test]
    fn lines_go_on_past_one_that_is_not_utf8() {
        let mut child = Reaper(
            Command::new("sh")
                .args(["-c", "printf 'a\\377b\\nnext\\n' >&2"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut lines = Lines::of(&mut child.0);
        assert_eq!(lines.wait_for("next"), "a\u{fffd}b\nnext\n");
    }

    /// A program that does not end is killed, and the test fails.
    #[test]
    fn output_within_bounds_a_program_that_does_not_end() {
        let dir = crate::temp_dir("never-ends");
        let pid = dir.join("pid");
        let failed = std::panic::catch_unwind(|| {
            output_within(
                Command::new("sh")
                    .arg("-c")
                    .arg("echo $$ > \"$0\"; exec sleep 600")
                    .arg(&pid),
                Duration::from_secs(3),
            )
        });
        assert!(failed.is_err());
        // Written within the 3 s on any machine the suite runs on.
        let pid = std::fs::read_to_string(&pid).unwrap();
        assert!(ended(pid.trim()), "process {} still runs", pid.trim());
        let out = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2"]),
            Duration::from_secs(30),
        );
        assert_eq!(
            (&out.stdout[..], &out.stderr[..]),
            (&b"out\n"[..], &b"err\n"[..])
        );
    }

    /// A program that cannot be started (a tool missing) is named in the failure: it
    /// was a bare "No such file or directory".
    #[test]
    fn a_program_that_cannot_start_is_named() {
        let failed = std::panic::catch_unwind(|| {
            output_within(
                &mut Command::new("no-such-tool-here"),
                Duration::from_secs(5),
            )
        });
        let said = failed.expect_err("nothing to start");
        let said = said.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            said.starts_with("cannot start no-such-tool-here: "),
            "{said}"
        );
    }

    /// A program that ends while something it started holds its output is a failure
    /// said within the bound: its output was read to the end, as long as that ran
    /// (here until the `sleep` ended, and then the run passed).
    #[test]
    fn output_held_by_what_a_program_started_is_bounded() {
        let failed = std::panic::catch_unwind(|| {
            output_within(
                Command::new("sh").args(["-c", "sleep 5 & echo started"]),
                Duration::from_millis(500),
            )
        });
        let said = failed.expect_err("the held pipe is a failure");
        let said = said.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(said.contains("still holds its stdout or stderr"), "{said}");
    }
}

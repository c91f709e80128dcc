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
    let mut child = command
        .current_dir(dir)
        .env("PORT", port.to_string())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::of(&mut child);
    lines.wait_for("listening on");
    (port, Reaper(child), lines)
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
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
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
        crate::poll(within, || self.0.try_wait().ok().flatten())
            .unwrap_or_else(|| panic!("the child did not end within {within:?}"))
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

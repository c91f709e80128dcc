//! The Runtime API emulator the Lambda runs go through: `cargo lambda watch
//! --only-lambda-apis` started and stopped, and the recording proxy before it (see
//! the parent module).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::measure::{RUN_TIMEOUT, stderr_file, tail};

/// A running `cargo lambda watch --only-lambda-apis` (in a process group of its own,
/// which is killed when dropped, or on Ctrl-C through the interrupt registry).
pub struct EmulatorProcess {
    child: std::process::Child,
    stderr_path: std::path::PathBuf,
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        crate::measure::reap::kill_group_and_reap(&mut self.child);
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// How long the emulator may take to listen.
const EMULATOR_START: Duration = Duration::from_secs(30);

/// Starts the Runtime API emulator (`cargo_lambda lambda watch --only-lambda-apis`)
/// on a free loopback port, in `package` (it reads a package's metadata to know its
/// functions), and waits until it listens.
///
/// # Errors
///
/// `package` is not a directory, cargo-lambda cannot be started, exits before it
/// listens (its stderr tail is in the message), or does not listen within 30 s.
pub fn start_emulator(
    cargo_lambda: &std::path::Path,
    package: &std::path::Path,
) -> anyhow::Result<(EmulatorProcess, SocketAddr)> {
    if !package.is_dir() {
        bail!(
            "the package directory {} for the emulator does not exist (--package-dir)",
            package.display()
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    coldstart_bootstrap::say!(
        "starting the Runtime API emulator (cargo lambda watch), which can take seconds"
    );
    let (stderr, stderr_path) = stderr_file("lambda-emulator.stderr")?;
    // A relative path is the caller's, not the package directory's the emulator runs
    // in; a bare name is looked up on PATH.
    let cargo_lambda = if cargo_lambda.is_relative() && cargo_lambda.components().nth(1).is_some() {
        std::env::current_dir()?.join(cargo_lambda)
    } else {
        cargo_lambda.to_path_buf()
    };
    let spawned = {
        // Not while a launch's child waits before exec with copies of every
        // descriptor (see `FORKING`); recorded as it starts, so a Ctrl-C clean-up
        // never misses it.
        let _forking = crate::measure::FORKING
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let _launching = crate::interrupt::launching();
        std::process::Command::new(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(package)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .inspect(|child| crate::interrupt::child_started(child.id()))
    };
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = std::fs::remove_file(&stderr_path);
            return Err(anyhow::Error::new(e).context(format!(
                "cannot start `{} lambda watch` (pipx install cargo-lambda)",
                cargo_lambda.display()
            )));
        }
    };
    let mut process = EmulatorProcess { child, stderr_path };
    let deadline = Instant::now() + EMULATOR_START;
    // Only the port is probed: an HTTP request to it would become an invocation.
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = crate::measure::exited(&mut process.child) {
            bail!(
                "`{} lambda watch` exited with {status} before it listened; its stderr ends with:\n{}",
                cargo_lambda.display(),
                tail(&process.stderr_path)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the emulator did not listen on {addr} within {EMULATOR_START:?}; its stderr ends with:\n{}",
                tail(&process.stderr_path)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((process, addr))
}

/// A Runtime API emulator listening at `addr`, with the recording proxy in front.
pub struct Emulator {
    addr: SocketAddr,
    pub(super) proxy: SocketAddr,
    seen: Seen,
}

/// What the proxy shares with the runs.
#[derive(Clone, Default)]
struct Seen {
    /// When the first `/next` of this run arrived.
    first_next: Arc<Mutex<Option<Instant>>>,
    /// `/next` requests forwarded in this run.
    nexts: Arc<AtomicUsize>,
    /// How many this run forwards: one per invocation; later ones are held.
    forward: Arc<AtomicUsize>,
    /// The run's number, counted by [`Emulator::reset`]: a connection accepted in an
    /// earlier run is an earlier function's.
    run: Arc<AtomicUsize>,
}

/// What the proxy looks for in a function's requests.
const NEXT: &[u8] = b"/runtime/invocation/next";

impl Emulator {
    /// The emulator at `addr` (already running), and a proxy in front of it.
    ///
    /// # Errors
    ///
    /// When the proxy cannot listen.
    pub fn new(addr: SocketAddr) -> anyhow::Result<Emulator> {
        let listener = TcpListener::bind("127.0.0.1:0").context("the proxy cannot listen")?;
        let proxy = listener.local_addr()?;
        let seen = Seen::default();
        let shared = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                // The run it came in, read before anything else is done with it.
                let run = shared.run.load(Ordering::Acquire);
                let Ok(upstream) = TcpStream::connect(addr) else {
                    continue;
                };
                relay(client, upstream, shared.clone(), run);
            }
        });
        Ok(Emulator { addr, proxy, seen })
    }

    /// `AWS_LAMBDA_RUNTIME_API` for a function: the proxy, under the emulator's path.
    pub fn runtime_api(&self) -> String {
        format!("http://{}/.rt", self.proxy)
    }

    /// Starts a run of `invocations` invocations.
    pub(super) fn reset(&self, invocations: usize) {
        *self
            .seen
            .first_next
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        self.seen.nexts.store(0, Ordering::Release);
        self.seen.forward.store(invocations, Ordering::Release);
        self.seen.run.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn first_next(&self) -> Option<Instant> {
        *self
            .seen
            .first_next
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Sends an invocation of the default function and returns the connection its
    /// answer will come back on.
    pub(super) fn queue(&self, payload: &str) -> anyhow::Result<TcpStream> {
        let mut stream = TcpStream::connect(self.addr).context("cannot reach the emulator")?;
        stream.set_read_timeout(Some(RUN_TIMEOUT))?;
        stream.set_write_timeout(Some(RUN_TIMEOUT))?;
        // One write, as for an HTTP run: piece by piece, the head went as many
        // small segments.
        let head = format!(
            "POST /2015-03-31/functions/_/invocations HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            payload.len()
        );
        stream.set_nodelay(true)?;
        stream.write_all(head.as_bytes())?;
        // The head queues the invocation; the emulator reads the event only as it
        // hands it to a function, which is not started yet: written from here, an
        // event larger than the sockets' buffers waited for ever. One the socket's
        // send buffer holds is written here, with no thread to start in the timing of
        // a warm invocation.
        if payload.len() <= INLINE_EVENT {
            stream.write_all(payload.as_bytes())?;
        } else {
            let mut body = stream.try_clone()?;
            let payload = payload.to_owned();
            std::thread::spawn(move || {
                let _ = body.write_all(payload.as_bytes());
            });
        }
        Ok(stream)
    }
}

/// The largest event written before the function exists without a thread of its
/// own: what a TCP socket's smallest default send buffer (16 KiB) holds.
const INLINE_EVENT: usize = 16 << 10;

/// Copies both ways between a function and the emulator; the first `/next` the
/// function sends after a reset is timed, and held ones are dropped.
fn relay(client: TcpStream, upstream: TcpStream, seen: Seen, run: usize) {
    let (Ok(client_r), Ok(upstream_w)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    std::thread::spawn(move || copy(client_r, upstream_w, Some((seen, run))));
    std::thread::spawn(move || copy(upstream, client, None));
}

/// A `/next` request is small and written at once, so it arrives as one read. One
/// on a connection of an earlier run (`watch`'s run number), sent by that run's
/// function as it was killed and read only now, is neither timed nor forwarded: it
/// would be this run's first, and the emulator would give the invocation to a
/// function that is gone. Its connection is closed.
fn copy(mut from: TcpStream, mut to: TcpStream, watch: Option<(Seen, usize)>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((seen, run)) = &watch
            && buf[..n].windows(NEXT.len()).any(|w| w == NEXT)
        {
            if seen.run.load(Ordering::Acquire) != *run {
                break;
            }
            let now = Instant::now();
            seen.first_next
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(now);
            let n = seen.nexts.fetch_add(1, Ordering::AcqRel) + 1;
            if n > seen.forward.load(Ordering::Acquire) {
                continue;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/next` an earlier run's function sent as it was killed, read by the proxy
    /// only after the next run began, is neither that run's first nor forwarded; its
    /// connection is closed. One from this run's function is both.
    #[test]
    fn a_next_from_an_earlier_runs_function_is_not_this_runs() {
        use std::io::{Read as _, Write as _};
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let emulator = Emulator::new(upstream.local_addr().unwrap()).unwrap();
        let proxy = emulator.proxy;
        let next = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n";
        emulator.reset(1);
        let mut old = TcpStream::connect(proxy).unwrap();
        // The proxy has connected upstream for it, after reading the run it came in.
        let (mut old_upstream, _) = upstream.accept().unwrap();
        emulator.reset(1);
        old.write_all(next).unwrap();
        old.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(old.read(&mut [0u8; 16]).unwrap(), 0, "closed");
        assert_eq!(emulator.first_next(), None);
        old_upstream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        let _ = old_upstream.read_to_end(&mut got);
        assert!(
            got.is_empty(),
            "forwarded: {:?}",
            String::from_utf8_lossy(&got)
        );
        // This run's function.
        let mut new = TcpStream::connect(proxy).unwrap();
        let (mut new_upstream, _) = upstream.accept().unwrap();
        new.write_all(next).unwrap();
        let mut got = vec![0u8; next.len()];
        new_upstream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        new_upstream.read_exact(&mut got).unwrap();
        assert_eq!(got, next);
        assert!(emulator.first_next().is_some());
    }
}

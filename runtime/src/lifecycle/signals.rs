//! SIGTERM and SIGINT: the listener a shutdown hook needs, the holds that keep a
//! signal for hooks not registered yet, and what a second signal does.
//!
//! `note`, the handler of a hold and of the listener's installation, runs in a signal
//! handler: it must never lock, allocate or block, and does only async-signal-safe
//! things (atomics, `sigaction`, `signal`, `raise`, `poll`, `write`). The state of
//! this module, all `Acquire`/`Release` (`note` reads or writes all but `HOLDING`
//! and `TOKIO_HANDLERS`):
//!
//! | static | set by | read by | what it says |
//! |---|---|---|---|
//! | `INSTALLING` | the listener's installation, true then false | `note` | a signal now is kept in `HELD` and counted in `TAKEN` |
//! | `LISTENING` | the listener's installation, once | `note`, a hold, its release | tokio's listener exists: it takes the first signal, `note` ends the process at the second |
//! | `HELD` | `note` (the signal; back to 0 where the hold ended under it), `take_held` and the release (back to 0) | `note`, the installation, `take_held`, the release | a signal caught before anything acted on it; whoever swaps it to 0 acts on it (one caught while the listener is installed reaches the listener too: acted on twice, which is as once) |
//! | `TAKEN` | `note`; the installation (1 where a signal came before it) | `note`, [`signal_came`] | how many signals the listener has been sent |
//! | `HOLDING` | the first hold (true); the last release, or an installation that failed (false) | the installation, [`wait_for_held_work`] | a [`SignalHold`] is held |
//! | `MARK_PENDING` | the tower layer at the first response's end | `note`, [`wait_for_held_work`] | a signal now is held as after the first response |
//! | `TOKIO_HANDLERS` | the installation; [`give_back_default_signals`] (back to 0) | [`give_back_default_signals`] | tokio's handler, where it replaced the default |
//!
//! `HOLDS` (the count of holds) is behind a lock and never touched by a handler.
//! A known window: a signal `note` stores in `HELD` just after the installation has
//! read it stays there unread (narrow; closing it touches every path of `note`).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use tokio::sync::Notify;

use super::shutdown::{signal_acted_on, signalled};
#[cfg(doc)]
use super::signal_came;
use super::{locked, trigger, wait_until};

/// Set once tokio's signal listener is in place.
static LISTENING: AtomicBool = AtomicBool::new(false);
/// Set while tokio's signal listener is being installed.
static INSTALLING: AtomicBool = AtomicBool::new(false);
/// A signal `note` caught before the listener existed; 0 if none.
static HELD: AtomicI32 = AtomicI32::new(0);
/// The handlers of SIGTERM and SIGINT once the listener was in place (tokio's), where
/// it took them from their default disposition; 0 where it did not.
static TOKIO_HANDLERS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
/// The signals the listener has been sent, counted by `note` (which tokio's handler
/// calls first) once the listener exists or while it is being installed, and 1 from
/// the start where one came before it existed. Counted in the handler, before the
/// listener's task runs: [`signal_came`] reads it so.
pub(super) static TAKEN: AtomicU32 = AtomicU32::new(0);
/// Set while a [`SignalHold`] is held (any of them).
static HOLDING: AtomicBool = AtomicBool::new(false);
/// How many [`SignalHold`]s are held: the signals are given back when the last one is
/// released, not the first (the exporters' and a program's own overlap).
static HOLDS: Mutex<usize> = Mutex::new(0);
/// Woken when a hold is released.
static RELEASED: Notify = Notify::const_new();
/// Set when the first response's body has ended and its mark is on its way: the tower
/// layer marks it only after the server's poll that writes it, so a client can read
/// the response before the mark. From here on a signal is held as after the first
/// response.
pub(super) static MARK_PENDING: AtomicBool = AtomicBool::new(false);

/// Installs the handlers now, so that a signal arriving right after the first
/// registration already runs the hooks, and waits for them on a task. Under a hold
/// ([`hold_signals_until_hooks`]) a signal runs the hooks only once the hold is
/// released, so that every hook of the held work is registered by then. Only the
/// first call installs; a concurrent call returns once the listener is in place.
pub(super) fn listen_for_signals() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once_force(|_| install_listener());
}

/// tokio sets up its signal handler before its listener subscribes: a signal in
/// between is taken by the handler and reaches no listener, and its default effect is
/// gone too, so the process would go on as if nothing had been sent. `note` is
/// installed first (where the disposition is still the default), and tokio's handler
/// calls the handler it replaces before its own work, so a signal in that window is
/// kept in `HELD` and acted on here once the listener exists.
fn install_listener() {
    use tokio::signal::unix::{SignalKind, signal};
    // Outside a runtime this panics (as documented) before any disposition changes;
    // a later call inside one installs.
    let _ = tokio::runtime::Handle::current();
    INSTALLING.store(true, Ordering::Release);
    let found = [libc::SIGTERM, libc::SIGINT].map(install_note);
    let [term_ignored, int_ignored] = found.map(|found| found == libc::SIG_IGN);
    // A signal the hold kept before this listener existed is acted on through
    // `take_held`, never seen by the listener: the next one the listener sees is the
    // second. Read before the listener's handlers exist, which see what comes after.
    let earlier = HELD.load(Ordering::Acquire) != 0 || signal_acted_on();
    if earlier {
        TAKEN.fetch_max(1, Ordering::AcqRel);
    }
    // A signal the process was started with ignored (`nohup`, a script's `cmd &`)
    // stays ignored, as under `#[tokio::main]`: tokio's handler would take it over.
    let listen = |ignored, kind| match ignored {
        true => Ok(None),
        false => signal(kind).map(Some),
    };
    let listeners = (
        listen(term_ignored, SignalKind::terminate()),
        listen(int_ignored, SignalKind::interrupt()),
    );
    let note_handler = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
    let (Ok(mut term), Ok(mut int)) = listeners else {
        // One listener may have been made: its handler, tokio's, would take that
        // signal with nothing listening. The default comes back where it was the
        // default or `note`.
        for (signo, found) in [libc::SIGTERM, libc::SIGINT].into_iter().zip(found) {
            let now = disposition(signo);
            if (found == libc::SIG_DFL || found == note_handler)
                && now != found
                && now != note_handler
            {
                // SAFETY: restoring the default disposition.
                unsafe { libc::signal(signo, libc::SIG_DFL) };
            }
        }
        INSTALLING.store(false, Ordering::Release);
        coldstart_bootstrap::say!(
            "coldstart: cannot listen for SIGTERM/SIGINT; shutdown hooks run only at the end of main"
        );
        give_back_signals();
        return;
    };
    // The handler tokio installed over the default disposition (taken by `note` here
    // or by a hold's): given back when the runtime is done, where still in place
    // ([`give_back_default_signals`]).
    for ((handler, signo), found) in TOKIO_HANDLERS
        .iter()
        .zip([libc::SIGTERM, libc::SIGINT])
        .zip(found)
    {
        if found == libc::SIG_DFL || found == note_handler {
            handler.store(disposition(signo), Ordering::Release);
        }
    }
    LISTENING.store(true, Ordering::Release);
    INSTALLING.store(false, Ordering::Release);
    crate::task::spawn(async move {
        if !earlier {
            let first = next_signal(&mut term, &mut int).await;
            // A second signal, while the first waits for held work or the shutdown it
            // started runs, ends the process at once: the default effect a user
            // pressing Ctrl-C twice expects.
            tokio::select! {
                () = wait_for_held_work() => {}
                again = next_signal(&mut term, &mut int) => end_at_once(again),
            }
            signalled(first);
        }
        end_at_once(next_signal(&mut term, &mut int).await);
    });
    if !HOLDING.load(Ordering::Acquire) {
        take_held();
    } else if HELD.load(Ordering::Acquire) != 0 {
        // Caught before the listener could take it: acted on as the listener would.
        crate::task::spawn(async {
            wait_for_held_work().await;
            take_held();
        });
    }
}

/// The next SIGTERM or SIGINT of the streams there are.
async fn next_signal(
    term: &mut Option<tokio::signal::unix::Signal>,
    int: &mut Option<tokio::signal::unix::Signal>,
) -> libc::c_int {
    async fn recv(stream: &mut Option<tokio::signal::unix::Signal>) {
        // `None` only once tokio's driver is gone: nothing more will come.
        let received = match stream {
            Some(s) => s.recv().await,
            None => None,
        };
        if received.is_none() {
            std::future::pending::<()>().await;
        }
    }
    tokio::select! {
        () = recv(term) => libc::SIGTERM,
        () = recv(int) => libc::SIGINT,
    }
}

/// Gives SIGTERM and SIGINT their default disposition back where the listener took them
/// from it; for when the runtime is done with them, its hooks run. tokio's handler
/// stays installed for the life of the process, and with the runtime gone nothing
/// reads what it keeps: a Ctrl-C after `block_on` (a `Builder` program's own
/// teardown, or the wait for blocking work as the runtime is dropped) did nothing.
///
/// Only where tokio's handler is still the one installed: a handler the program put
/// in its place since (the `ctrlc` crate, say) stays. tokio installs its handler once
/// per process, so a `tokio::signal` listener made after this (a second runtime)
/// hears nothing: the signal has its default effect instead.
pub(crate) fn give_back_default_signals() {
    for (handler, signo) in TOKIO_HANDLERS.iter().zip([libc::SIGTERM, libc::SIGINT]) {
        let tokio = handler.swap(0, Ordering::AcqRel);
        if tokio != 0 && disposition(signo) == tokio {
            // SAFETY: restoring the default disposition.
            unsafe { libc::signal(signo, libc::SIG_DFL) };
        }
    }
}

/// Ends the process with `signo`'s default effect, now.
fn end_at_once(signo: libc::c_int) -> ! {
    let line = again_line(signo);
    coldstart_bootstrap::say!("{}", line.trim_end());
    default_effect(signo);
    // Not reached where the default effect ends the process; the shell's code if not.
    std::process::exit(128 + signo)
}

/// The line [`end_at_once`] says, from a signal handler: written only where stderr
/// takes it at once (a write to a full pipe would hold the handler, and the end with
/// it). Async-signal-safe: `poll` and `write`.
fn say_again(signo: libc::c_int) {
    let line = again_line(signo).as_bytes();
    let mut stderr = libc::pollfd {
        fd: libc::STDERR_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: polling and writing fd 2 with a valid pollfd and buffer.
    unsafe {
        if libc::poll(&mut stderr, 1, 0) == 1 && stderr.revents & libc::POLLOUT != 0 {
            libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len());
        }
    }
}

/// The line a second signal is said with, ending in a newline.
fn again_line(signo: libc::c_int) -> &'static str {
    if signo == libc::SIGINT {
        "coldstart: SIGINT again; ending now, without waiting for the shutdown\n"
    } else {
        "coldstart: SIGTERM again; ending now, without waiting for the shutdown\n"
    }
}

/// Raises `signo` again with its default disposition: the effect it would have had
/// with nothing installed. Async-signal-safe.
fn default_effect(signo: libc::c_int) {
    // SAFETY: `signal` and `raise` are async-signal-safe; restoring the default
    // disposition and raising a signal this process was sent.
    unsafe {
        libc::signal(signo, libc::SIG_DFL);
        libc::raise(signo);
    }
}

/// Waits (at most [`RELEASE_WAIT`]) for a hold to be released. Only after the first
/// response: before it the held work has not started, so there is nothing to wait for.
pub(super) async fn wait_for_held_work() {
    // `trigger`, not the state: a signal before the first response makes it `Draining`.
    if trigger().is_none() && !MARK_PENDING.load(Ordering::Acquire) {
        return;
    }
    let released = wait_until(&RELEASED, || !HOLDING.load(Ordering::Acquire));
    let _ = tokio::time::timeout(RELEASE_WAIT, released).await;
}

/// Acts on a signal the hold caught, if there is one.
fn take_held() {
    let held = HELD.swap(0, Ordering::AcqRel);
    if held != 0 {
        signalled(held);
    }
}

/// Longest a signal waits for a hold to be released before the hooks run anyway.
pub(super) const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Holds SIGTERM and SIGINT that arrive after the first response, for work that
/// registers its shutdown hooks only after the first response (the exporters' final
/// flush): instead of ending the process before the hooks exist, the signal runs them
/// once the hold is released, saying they are registered. Before the first response a
/// signal keeps its default effect; from the moment the tower layer sees the first
/// response's body end it is held, since the mark follows the server's write. Only a
/// signal whose disposition is still the default is held: a handler or an ignore set
/// before is left as it is, and a handler installed after (tokio's, say) takes the
/// signal over. The first hold costs two `sigaction` calls per signal; call it before
/// serving.
///
/// Holds add up: with several (the exporters' and a program's own), a signal waits
/// for the last to be released.
///
/// ```no_run
/// # async fn start_uploader() {}
/// # async fn body() {
/// let hold = coldstart_runtime::lifecycle::hold_signals_until_hooks();
/// coldstart_runtime::after_first_request(async move {
///     start_uploader().await;
///     coldstart_runtime::on_shutdown("upload", std::time::Duration::from_secs(2), || async {
///         // the last upload
///     });
///     // The hook exists: a signal held until now runs it.
///     hold.release();
/// });
/// # }
/// ```
pub fn hold_signals_until_hooks() -> SignalHold {
    let mut holds = locked(&HOLDS);
    *holds += 1;
    if *holds == 1 {
        HOLDING.store(true, Ordering::Release);
        // With the listener in place (a hook registered before serving), it waits for
        // the release itself; `note` is only for a process without one yet.
        if !LISTENING.load(Ordering::Acquire) {
            for signo in [libc::SIGTERM, libc::SIGINT] {
                install_note(signo);
            }
        }
    }
    SignalHold(())
}

/// A hold of SIGTERM and SIGINT ([`hold_signals_until_hooks`]), released when dropped
/// (also when the work that holds it panics) or by [`SignalHold::release`]: release
/// it once the held work has registered its hooks, or found it had none to register.
#[must_use = "the hold ends when this is dropped"]
#[derive(Debug)]
pub struct SignalHold(());

impl SignalHold {
    /// Ends this hold. Once no other is held, the default disposition comes back
    /// where `note` is still installed, and a held signal takes its effect now,
    /// running the hooks if a listener exists, as the default signal would otherwise.
    pub fn release(self) {}
}

impl Drop for SignalHold {
    fn drop(&mut self) {
        let mut holds = locked(&HOLDS);
        *holds = holds.saturating_sub(1);
        if *holds == 0 {
            give_back_signals();
        }
    }
}

/// Installs `note` for `signo` where its disposition is still the default; the
/// disposition it found.
fn install_note(signo: libc::c_int) -> libc::sighandler_t {
    let found = disposition(signo);
    if found != libc::SIG_DFL {
        return found;
    }
    // SAFETY: setting a disposition with a valid pointer; `note` only does
    // async-signal-safe things (atomics, `sigaction`, `signal`, `raise`, `poll`,
    // `write`).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signo, &action, std::ptr::null_mut());
    }
    found
}

/// The disposition of `signo`: `SIG_DFL`, `SIG_IGN` or a handler.
fn disposition(signo: libc::c_int) -> libc::sighandler_t {
    // SAFETY: reading the disposition into a valid sigaction; async-signal-safe.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signo, std::ptr::null(), &mut current);
        current.sa_sigaction
    }
}

/// Whether `note` is the installed handler of `signo`.
fn holds(signo: libc::c_int) -> bool {
    disposition(signo) == note as extern "C" fn(libc::c_int) as libc::sighandler_t
}

/// The handler of a hold, and of the listener's installation. tokio's registry keeps
/// the handler it replaces and calls it first: when `note` is not the installed
/// handler, the signal belongs to tokio's handler, which keeps it once its listener
/// exists; while coldstart's listener is being installed it may not, so the signal is
/// kept here too (acting on it twice is the same as once). Once the listener exists,
/// the second signal it is sent ends the process here.
extern "C" fn note(signo: libc::c_int) {
    if LISTENING.load(Ordering::Acquire) {
        // The listener takes the first signal. A second ends the process here, in the
        // handler: the listener's task may never run again (a hook or a body blocking
        // the only thread under `current_thread`), nor its line be written (stderr
        // held by a stalled reader).
        if TAKEN.fetch_add(1, Ordering::AcqRel) >= 1 {
            say_again(signo);
            default_effect(signo);
        }
        return;
    }
    // The listener is being installed because a hook is registered: the signal is
    // kept and acted on once it exists, whether `note` is still the handler or
    // tokio's now calls it first (before the first response too: the hooks run).
    if INSTALLING.load(Ordering::Acquire) {
        HELD.store(signo, Ordering::Release);
        // Counted for the listener: the next signal is a second one.
        TAKEN.fetch_add(1, Ordering::AcqRel);
        return;
    }
    if !holds(signo) {
        return;
    }
    // Held, unless one is held already: a second signal takes its default effect.
    // Only once a first response (or the fallback) came: `trigger`, not the state,
    // which the end of `main` makes `Draining` with no response at all.
    if (trigger().is_some() || MARK_PENDING.load(Ordering::Acquire))
        && HELD
            .compare_exchange(0, signo, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        // The hold may have ended between the check above and the store: then its
        // release looked at `HELD` already, found nothing, and gave the disposition
        // back. Taken back (unless taken already) and raised again, for the
        // disposition now in place, once this handler returns. Where the listener is
        // coming instead, it reads `HELD` itself.
        let listener = LISTENING.load(Ordering::Acquire) || INSTALLING.load(Ordering::Acquire);
        if !holds(signo)
            && !listener
            && HELD
                .compare_exchange(signo, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // SAFETY: raise(3) is async-signal-safe; the signal is blocked while its
            // handler runs, and delivered to the disposition in place once it returns.
            unsafe { libc::raise(signo) };
        }
        return;
    }
    // Before the first response, or a second signal: the default effect, as if nothing
    // had been installed.
    default_effect(signo);
}

/// Where `note` is still installed the default disposition comes back; a held
/// signal is acted on by the listener if there is one, else raised with its default
/// effect.
fn give_back_signals() {
    for signo in [libc::SIGTERM, libc::SIGINT] {
        if holds(signo) {
            // SAFETY: restoring the default disposition.
            unsafe { libc::signal(signo, libc::SIG_DFL) };
        }
    }
    HOLDING.store(false, Ordering::Release);
    RELEASED.notify_waiters();
    if LISTENING.load(Ordering::Acquire) {
        take_held();
        return;
    }
    let held = HELD.swap(0, Ordering::AcqRel);
    if held != 0 {
        // SAFETY: raising a signal this process was sent, now with its default effect.
        unsafe { libc::raise(held) };
    }
}

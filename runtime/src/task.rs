//! coldstart's own tasks: spawned with one copy of tokio's task code ([`spawn`]), and
//! work of milliseconds run on a thread of its own ([`off_runtime`]).
//!
//! tokio compiles its task machinery (poll, wake, cancel, join, drop) once for each
//! future type it spawns: 5 to 10 KB of text per type in a release build. coldstart's
//! own tasks (the fallback timer, the signal listener, the hooks at shutdown, the
//! exporters' listener, queue and pushes) are each a type of their own, and at the first
//! response the whole text of a binary is resident, so every copy was resident memory.
//! Spawned boxed, those with the same output share one copy, for one more allocation
//! per task: small beside tokio's own for the task (BENCHMARKS.md, "Text size").

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::task::JoinHandle;

/// A task's future behind one type, whatever the future was.
type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// `tokio::spawn`, with the future boxed: every task of one output type shares tokio's
/// task code.
///
/// # Panics
///
/// Outside a tokio runtime, as `tokio::spawn` does.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let task = coldstart_runtime::task::spawn(async { 6 * 7 });
/// assert_eq!(task.await.unwrap(), 42);
/// # });
/// ```
#[track_caller]
pub fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> JoinHandle<T> {
    let task: Boxed<T> = Box::pin(task);
    tokio::spawn(task)
}

/// The stack size of [`off_runtime`]'s threads: the plan's for the runtime's threads,
/// once a runtime is built from it (0: std's default).
static STACK_SIZE: AtomicUsize = AtomicUsize::new(0);

/// [`off_runtime`]'s threads that may still run: joined at the end of `main` without a
/// signal, as dropping the runtime waits for its blocking pool.
static LIVE: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Gives [`off_runtime`]'s threads `bytes` of stack, as the runtime's threads have.
pub(crate) fn set_stack_size(bytes: usize) {
    STACK_SIZE.store(bytes, Ordering::Relaxed);
}

/// Waits for every thread [`off_runtime`] started that still runs: what the end of
/// `main` does without a signal, as `#[tokio::main]` waits for its blocking pool. The
/// runtime runs on meanwhile: a thread inside it may wait on it (a timer, a task it
/// spawned), which nothing drives on `current_thread` once `block_on` has returned.
/// Polled every millisecond rather than joined on a thread of its own: the end of a
/// program that reached a task limit needs no thread.
pub(crate) async fn wait_for_live() {
    loop {
        let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(PoisonError::into_inner));
        if live.is_empty() {
            return;
        }
        for thread in live {
            while !thread.is_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let _ = thread.join();
        }
    }
}

/// Runs `work` on a thread of its own, named `name`, and resolves with its result: for
/// work of milliseconds that would otherwise hold a runtime thread (under `minimal`,
/// the only one, so every request waits). Not tokio's blocking pool: deferred work may
/// fill it, and tokio panics where it cannot add a thread. Where no thread can be made
/// (a task limit reached), `work` runs here, at once. The thread is inside the
/// runtime, so `work` may spawn tasks; a panic in `work` goes on in the caller. It has
/// the stack size the plan gives the runtime's threads, and the end of `main` waits for
/// it as for the blocking pool's.
///
/// # Panics
///
/// Outside a tokio runtime, and where `work` panics.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let name = coldstart_runtime::task::off_runtime("example-work", || {
///     std::thread::current().name().map(str::to_owned)
/// });
/// assert_eq!(name.await.as_deref(), Some("example-work"));
/// # });
/// ```
pub async fn off_runtime<T, F>(name: &str, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    begin(name, work).finish().await
}

/// [`off_runtime`]'s work, started: its result once [`Begun::finish`] is awaited.
pub(crate) struct Begun<T>(tokio::sync::oneshot::Receiver<std::thread::Result<T>>);

/// Starts `work` as [`off_runtime`] does, at once rather than when first awaited: for
/// several that run side by side.
pub(crate) fn begin<T, F>(name: &str, work: F) -> Begun<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    use std::panic::{AssertUnwindSafe, catch_unwind};

    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(catch_unwind(AssertUnwindSafe(work)));
    });
    if let Err(job) = start_thread(name, job) {
        // No thread can be made (a task limit reached): here, at once.
        job();
    }
    Begun(result)
}

impl<T> Begun<T> {
    /// The work's result; a panic in it goes on here.
    pub(crate) async fn finish(self) -> T {
        match self.0.await {
            Ok(Ok(value)) => value,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // The job ends only after it has sent.
            Err(_) => unreachable!("the work's thread ended without an answer"),
        }
    }
}

/// Work for a thread of [`off_runtime`], behind one type: std's code that starts a
/// thread is compiled once, not once for each kind of work (several KB of text each,
/// all of it resident).
type Job = Box<dyn FnOnce() + Send>;

/// Starts `job` on a thread of its own named `name`, inside the current runtime, with
/// the plan's stack size, and keeps the thread for [`wait_for_live`]; gives the job back
/// where no thread can be made.
fn start_thread(name: &str, job: Job) -> Result<(), Job> {
    use std::sync::Arc;

    let runtime = tokio::runtime::Handle::current();
    // Taken back from here when no thread can be made to take it.
    let job = Arc::new(Mutex::new(Some(job)));
    let taken = job.clone();
    let mut thread = std::thread::Builder::new().name(name.to_owned());
    let stack = STACK_SIZE.load(Ordering::Relaxed);
    if stack > 0 {
        thread = thread.stack_size(stack);
    }
    let spawned = thread.spawn(move || {
        let job = taken.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(job) = job {
            let _inside = runtime.enter();
            job();
        }
    });
    match spawned {
        Ok(thread) => {
            let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
            live.retain(|t| !t.is_finished());
            live.push(thread);
            Ok(())
        }
        Err(_) => match job.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(job) => Err(job),
            // Not started, so never taken; nothing to give back.
            None => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic in the work goes on in the caller, as if the work had run there; the
    /// work runs inside the runtime, so it may spawn.
    #[tokio::test]
    async fn a_panic_in_the_work_goes_on_in_the_caller() {
        let caller = spawn(off_runtime("test-work", || -> u8 {
            panic!("the work's own")
        }));
        let panic = caller.await.unwrap_err().into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"the work's own"));
        let spawned = off_runtime("test-work", || spawn(async { 7 })).await;
        assert_eq!(spawned.await.unwrap(), 7);
    }

    /// A caller dropped while its work runs (a request cancelled mid-render): the work
    /// still runs to its end on its thread, which drops the result; nothing panics.
    #[tokio::test]
    async fn a_caller_dropped_mid_wait_leaves_the_work_to_finish() {
        let (started, running) = tokio::sync::oneshot::channel();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (finished, done) = std::sync::mpsc::channel();
        let caller = spawn(off_runtime("test-work", move || {
            let _ = started.send(());
            wait.recv().unwrap();
            finished
                .send(std::thread::current().name().map(str::to_owned))
                .unwrap();
            vec![0u8; 64]
        }));
        running.await.unwrap();
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        release.send(()).unwrap();
        let ran_on = done.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(ran_on.unwrap().as_deref(), Some("test-work"));
    }
}

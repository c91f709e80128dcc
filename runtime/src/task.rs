//! One copy of tokio's task code for coldstart's own tasks.
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

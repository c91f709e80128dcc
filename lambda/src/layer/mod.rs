/*!
The invocation layer: a tower layer for `lambda_runtime::Runtime::layer`, wrapped
around the service that runs the handler and posts its response.

For each invocation it opens a server span (FaaS conventions, linked to the X-Ray
trace header), and once the response has been posted, in this order: ends the span,
writes the EMF record, marks coldstart's first response done (the first time), and
flushes queued spans (and pushes the metrics, with a Pushgateway) within the flush
budget. Only then does its future complete and
`lambda_runtime` ask for the next invocation: the caller already has its answer,
and nothing is left queued when Lambda freezes the process.

An invocation still running 200 ms ([`TIMEOUT_NOTICE`](future::TIMEOUT_NOTICE))
before its deadline is recorded then as timed out: a line on stderr, the span ended as
an error of type `timeout`, the EMF record with its error, and a flush in what is
left. Lambda stops a timed-out invocation with the process, which would otherwise lose
all three.

It must never fail an invocation: telemetry problems are counted and reported, not
returned. It assumes one invocation at a time (`Runtime::run`).
*/

pub(crate) mod future;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use coldstart_exporters::Telemetry;
use lambda_runtime::LambdaInvocation;
use lambda_runtime_api_client::BoxError;
use tower_layer::Layer;
use tower_service::Service;

pub use future::InvocationFuture;

use crate::function::Function;
use crate::ready::Ready;
use crate::settings::Settings;

/// Set by the first invocation: every later one is warm.
static COLD_DONE: AtomicBool = AtomicBool::new(false);

/// What every invocation's service shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) function: Function,
    pub(crate) settings: Settings,
    pub(crate) telemetry: Option<Telemetry>,
    /// When the layer was applied: just before the first `/next`.
    pub(crate) ready: std::sync::OnceLock<Ready>,
}

/// The layer; see the module documentation. [`run`](crate::run) applies it; apply it
/// yourself to a `lambda_runtime::Runtime` you build, together with
/// [`instrument`](crate::instrument) on the handler.
///
/// ```no_run
/// use coldstart_lambda::{Error, InvocationLayer, LambdaEvent, Runtime, instrument, service_fn};
///
/// async fn echo(event: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
///     Ok(event.payload)
/// }
///
/// # async fn main_body() -> Result<(), Error> {
/// let layer = InvocationLayer::from_env()?;
/// // The extension's registration, where `#[coldstart::main]` started one, done
/// // before the first `/next`.
/// coldstart_lambda::registered().await;
/// Runtime::new(instrument(service_fn(echo))).layer(layer).run().await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct InvocationLayer {
    shared: Arc<Shared>,
}

impl InvocationLayer {
    /// The layer for the function the Lambda variables describe, with the telemetry
    /// `#[coldstart::main]` installed (none outside it: EMF lines only).
    ///
    /// # Errors
    ///
    /// [`EnvError`](crate::EnvError) naming missing or invalid Lambda variables.
    pub fn from_env() -> Result<InvocationLayer, crate::EnvError> {
        match crate::function::current() {
            Ok(function) => Ok(InvocationLayer::new(function.clone())),
            Err(e) => Err(e.clone()),
        }
    }

    /// The layer for `function`.
    pub fn new(function: Function) -> InvocationLayer {
        let telemetry = coldstart_exporters::telemetry();
        let settings = crate::settings::current();
        InvocationLayer {
            shared: Arc::new(Shared {
                function,
                settings,
                telemetry,
                ready: std::sync::OnceLock::new(),
            }),
        }
    }
}

impl<S> Layer<S> for InvocationLayer {
    type Service = Invocation<S>;

    /// Applied just before the runtime loop starts: the end of init.
    fn layer(&self, inner: S) -> Invocation<S> {
        // The init duration goes only in the EMF record of a cold start.
        let lived =
            self.shared.settings.emf_namespace.is_some() && !self.shared.function.initialised_ahead;
        let _ = self.shared.ready.set(Ready::now(lived));
        crate::init_error::mark_serving();
        // A registration `prepare` started that `run` did not wait for: its failure is
        // said when it comes. And the shutdown as `run` prepares it, for a program
        // that runs its own `Runtime`: the hooks capped to what Lambda gives after
        // SIGTERM (with coldstart's extension, or with another's only), no drain.
        crate::extension::follow();
        if !crate::extension::started() && crate::extension_wanted() {
            coldstart_bootstrap::say!(
                "coldstart: lambda: a shutdown hook or a Pushgateway waits for the shutdown, but coldstart's extension was not registered, so Lambda may not send SIGTERM: await coldstart::lambda::registered() before Runtime::run"
            );
        }
        crate::at_sigterm(crate::hook_cap(crate::extension::started()));
        Invocation {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Longer than this between the end of init and the first invocation, the environment
/// was started ahead of any request: Lambda's proactive initialisation of an
/// on-demand function, which keeps `AWS_LAMBDA_INITIALIZATION_TYPE` at `on-demand`.
/// A real cold start's request is already waiting when the runtime first asks for it.
/// Datadog's Lambda libraries use 10 s too, counted from the start of init; this
/// counts from its end, which it knows (the moment the layer is applied).
const PROACTIVE_GAP: Duration = Duration::from_secs(10);

/// Whether an invocation is a cold start: the process's first, in an environment not
/// made ready ahead of requests (provisioned concurrency, SnapStart, managed instances:
/// `initialised_ahead`), and not come long after the end of init (`since_ready`, when
/// known: proactive initialisation).
fn is_cold(first: bool, initialised_ahead: bool, since_ready: Option<Duration>) -> bool {
    first && !initialised_ahead && since_ready.is_none_or(|gap| gap <= PROACTIVE_GAP)
}

/// The service [`InvocationLayer`] makes.
#[derive(Debug, Clone)]
pub struct Invocation<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<LambdaInvocation> for Invocation<S>
where
    S: Service<LambdaInvocation, Response = (), Error = BoxError>,
{
    type Response = ();
    type Error = BoxError;
    type Future = InvocationFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let received = Instant::now();
        let first = !COLD_DONE.swap(true, Ordering::AcqRel);
        // The clock is read for the first invocation only.
        let since_ready = self
            .shared
            .ready
            .get()
            .filter(|_| first)
            .map(|ready| ready.before(coldstart_runtime::timeline::now_ns()));
        let cold = is_cold(first, self.shared.function.initialised_ahead, since_ready);
        crate::handler::reset();
        let record = future::Pending {
            invocation_id: invocation.context.request_id.clone(),
            first,
            cold,
            received,
            deadline_ms: future::deadline(invocation.context.deadline, future::now_ms()),
        };
        #[cfg(feature = "tracing")]
        let cx = crate::span::start(&self.shared.function, &invocation, cold);
        #[cfg(feature = "tracing")]
        let inner = {
            let _entered = cx.clone().attach();
            self.inner.call(invocation)
        };
        #[cfg(not(feature = "tracing"))]
        let inner = self.inner.call(invocation);
        InvocationFuture::new(
            inner,
            self.shared.clone(),
            record,
            #[cfg(feature = "tracing")]
            cx,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_first_invocation_soon_after_init_is_a_cold_start() {
        let soon = Some(Duration::from_millis(3));
        assert!(is_cold(true, false, soon));
        assert!(is_cold(true, false, Some(PROACTIVE_GAP)));
        // Where the end of init is not known, the first invocation counts.
        assert!(is_cold(true, false, None));
        assert!(!is_cold(false, false, soon), "not the first");
        assert!(!is_cold(true, true, soon), "made ready ahead");
        assert!(
            !is_cold(true, false, Some(Duration::from_secs(11))),
            "proactive initialisation"
        );
    }
}

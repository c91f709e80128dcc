/*!
A tower middleware that marks the first response done when its body has been fully
handed to the server and the poll in which the server wrote it has returned: the
moment deferred inits, exporters and `after_first_request` work may start. Works with hyper (through `hyper_util::service::TowerToHyperService`)
and axum (`Router::layer`), both tested under a real server, and by its types with
tonic (`Server::builder().layer`): it only wraps `http::Response<B>` bodies.

Put it outermost, so that it sees the response every other layer produced
(compression, timeouts, routing):

```
use coldstart_runtime::first_response::{FirstResponse, FirstResponseLayer};
use tower_layer::Layer;

fn outermost<S>(app: S) -> FirstResponse<S> {
    FirstResponseLayer::new().layer(app)
}
```

```text
axum:  Router::new().route("/", get(hello)).layer(FirstResponseLayer::new())   // last .layer() call
tonic: Server::builder().layer(FirstResponseLayer::new()).add_service(svc)
hyper: TowerToHyperService::new(FirstResponseLayer::new().layer(svc))
```

It must stay invisible on the request path: after the first response it adds one
atomic load per response and a branch per body frame, and it never buffers or delays
a frame.
*/

mod future;
mod layer;

use future::Bodiless;
pub use future::{MarkOnEnd, ResponseFuture};
pub use layer::FirstResponseLayer;

use std::task::{Context, Poll};

use http::{Request, Response};

/// A service whose responses mark the first response done once their body has been
/// fully sent. Made by [`FirstResponseLayer`].
#[derive(Debug, Clone, Copy)]
pub struct FirstResponse<S> {
    inner: S,
}

impl<S> FirstResponse<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        FirstResponse { inner }
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for FirstResponse<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<MarkOnEnd<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The answer to a HEAD has no body to send: the server writes its head and
        // never polls the body. Nor has a CONNECT's answered 2xx (the connection
        // becomes a tunnel; hyper drops the body unpolled, HTTP/1 and HTTP/2 alike).
        let method = request.method();
        let bodiless = if method == http::Method::HEAD {
            Bodiless::Always
        } else if method == http::Method::CONNECT {
            Bodiless::WhenSuccess
        } else {
            Bodiless::Never
        };
        ResponseFuture::new(self.inner.call(request), bodiless)
    }
}

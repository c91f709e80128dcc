//! The [`tower_layer::Layer`] for [`HttpTelemetry`].

use tower_layer::Layer;

use super::{HttpTelemetry, RouteFn};

/// Adds HTTP server metrics and spans to a service; see [`super`].
///
/// ```
/// use coldstart_exporters::http::HttpTelemetryLayer;
/// // Every path of this service is one route, `/`.
/// let layer = HttpTelemetryLayer::new().route(|_path| Some("/"));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpTelemetryLayer {
    route: Option<RouteFn>,
}

impl HttpTelemetryLayer {
    /// A layer that takes route templates from a [`super::Route`] extension on the
    /// response or the request, or axum's `MatchedPath` with feature `axum`.
    pub fn new() -> Self {
        HttpTelemetryLayer { route: None }
    }

    /// Maps paths the router does not label to their route template. Return `None`
    /// for a path that matches no route (labelled `unmatched`).
    pub fn route(self, route: RouteFn) -> Self {
        HttpTelemetryLayer { route: Some(route) }
    }
}

impl<S> Layer<S> for HttpTelemetryLayer {
    type Service = HttpTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTelemetry::new(inner, self.route)
    }
}

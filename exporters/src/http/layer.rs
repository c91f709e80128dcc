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
#[derive(Debug, Clone, Copy)]
pub struct HttpTelemetryLayer {
    route: Option<RouteFn>,
    scheme: &'static str,
}

impl Default for HttpTelemetryLayer {
    fn default() -> Self {
        HttpTelemetryLayer::new()
    }
}

impl HttpTelemetryLayer {
    /// A layer that takes route templates from a [`super::Route`] extension on the
    /// response or the request, or axum's `MatchedPath` with feature `axum`.
    pub fn new() -> Self {
        HttpTelemetryLayer {
            route: None,
            scheme: "http",
        }
    }

    /// Maps paths the router does not label to their route template. Return `None`
    /// for a path that matches no route (labelled `unmatched`).
    pub fn route(self, route: RouteFn) -> Self {
        HttpTelemetryLayer {
            route: Some(route),
            ..self
        }
    }

    /// The spans' `url.scheme` for requests that do not say theirs (an HTTP/1.1
    /// request line says none): `http` unless set here, `https` for a server behind
    /// TLS. It also gives `server.port` when the request names no port.
    ///
    /// ```
    /// use coldstart_exporters::http::HttpTelemetryLayer;
    /// let layer = HttpTelemetryLayer::new().scheme("https");
    /// # let _ = layer;
    /// ```
    pub fn scheme(self, scheme: &'static str) -> Self {
        HttpTelemetryLayer { scheme, ..self }
    }
}

impl<S> Layer<S> for HttpTelemetryLayer {
    type Service = HttpTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTelemetry::new(inner, self.route, self.scheme)
    }
}

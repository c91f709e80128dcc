//! The [`tower_layer::Layer`] that makes [`FirstResponse`] services.

use super::FirstResponse;

/// Marks the first response done when its body has been fully sent. Place it
/// outermost in the layer stack.
#[derive(Debug, Clone, Copy, Default)]
pub struct FirstResponseLayer {
    _private: (),
}

impl FirstResponseLayer {
    /// The layer.
    pub fn new() -> Self {
        FirstResponseLayer { _private: () }
    }
}

impl<S> tower_layer::Layer<S> for FirstResponseLayer {
    type Service = FirstResponse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FirstResponse::new(inner)
    }
}

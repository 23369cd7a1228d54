//! Recording upstreams for the tests: the product's own demo backend.

pub use demo_backend::Seen;

/// A recording upstream answering a fixed body; stops on drop.
pub struct Upstream(demo_backend::Backend);

impl Upstream {
    /// Listens on 127.0.0.1 (any free port), answering `upstream`.
    pub fn start() -> Upstream {
        Self::start_with_body("upstream")
    }

    /// Same, answering every request with `body`.
    pub fn start_with_body(body: &str) -> Upstream {
        Upstream(demo_backend::Backend::fixed(body).expect("bind upstream"))
    }
}

impl std::ops::Deref for Upstream {
    type Target = demo_backend::Backend;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

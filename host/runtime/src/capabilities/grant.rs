//! What an invocation may reach beyond its own memory, decided before it starts.

use std::sync::Arc;

use skillhost_upstream::outbound::BoundConnection;

use crate::capabilities::state::StateGrant;

/// What an invocation may reach beyond its own memory.
#[derive(Default)]
pub struct Capabilities {
    /// The connection the invocation is bound to, if any.
    pub connection: Option<Arc<BoundConnection>>,
    /// The state the invocation may keep (contract 0.2), if any.
    pub state: Option<StateGrant>,
}

impl Capabilities {
    /// No connection: `http.send` is refused and `connection.info` traps.
    pub fn none() -> Self {
        Capabilities::default()
    }

    /// Bound to `connection`.
    pub fn bound(connection: Arc<BoundConnection>) -> Self {
        Capabilities {
            connection: Some(connection),
            state: None,
        }
    }

    /// With state kept in `grant`.
    pub fn with_state(mut self, grant: StateGrant) -> Self {
        self.state = Some(grant);
        self
    }
}

//! What the host knows about each provider's services, one module per provider: a second
//! provider is a new module here, not edits across the tree.

pub mod microsoft;

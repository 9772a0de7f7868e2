//! Host-side bindings of the `skillhost:skill@0.1.0` world (`wit/skill.wit`).
//!
//! Every import is async (an HTTP call must not block the runtime, and the invocation's deadline
//! must be able to cancel it) and trappable (a guest that breaks a host rule, such as flooding
//! `emit`, is stopped rather than answered).

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "skill",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "skillhost:skill/http.incoming-body": crate::outbound::IncomingBody,
    },
});

pub use self::skillhost::skill::{connection, emit, http, log, types};
pub use exports::skillhost::skill::guest;

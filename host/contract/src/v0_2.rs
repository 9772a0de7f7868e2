//! Contract `skillhost:skill@0.2.0` (`wit/skill@0.2.0/`): 0.1.0 plus the `state` interface and
//! the `conflict` error, its generated bindings converted to and from the neutral types of
//! [`crate::types`] and [`crate::manifest`].
//!
//! Everything 0.1.0 has is expanded from the same source ([`crate::bindings`]); this module adds
//! the `state` imports. Threat: `state` keys and values are guest-controlled; the host scopes
//! them (the guest never names a tenant, connection or skill), caps them, and stages writes
//! until the run is over (see `skillhost-runtime`'s state capability).

use std::marker::PhantomData;

use wasmtime::Store;
use wasmtime::component::{HasData, InstancePre, Linker, Resource};

use crate::imports::SkillImports;
use crate::manifest::{OutputKind, ParamKind, ParamSpec, SkillInfo};
use crate::types;

crate::bindings::contract_bindings!("../../wit/skill@0.2.0", {
    E::Conflict(m) => types::SkillError::Conflict(m),
});

use generated::skillhost::skill::state;

impl<T: SkillImports> state::Host for ImportsRef<'_, T> {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<state::Entry>, state::StateError>> {
        let result = self.0.state_get(key).await?;
        Ok(result
            .map(|entry| {
                entry.map(|e| state::Entry {
                    value: e.value,
                    version: e.version,
                })
            })
            .map_err(state_error))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        expected_version: Option<u64>,
    ) -> wasmtime::Result<Result<(), state::StateError>> {
        let result = self
            .0
            .state_stage(key, Some(value), expected_version)
            .await?;
        Ok(result.map_err(state_error))
    }

    async fn delete(
        &mut self,
        key: String,
        expected_version: Option<u64>,
    ) -> wasmtime::Result<Result<(), state::StateError>> {
        let result = self.0.state_stage(key, None, expected_version).await?;
        Ok(result.map_err(state_error))
    }

    async fn lock(&mut self, name: String) -> wasmtime::Result<Result<(), state::StateError>> {
        let result = self.0.state_lock(name).await?;
        Ok(result.map_err(state_error))
    }
}

fn state_error(error: types::StateError) -> state::StateError {
    match error {
        types::StateError::InUse(m) => state::StateError::InUse(m),
        types::StateError::Limit(m) => state::StateError::Limit(m),
        types::StateError::Invalid(m) => state::StateError::Invalid(m),
        types::StateError::Unavailable(m) => state::StateError::Unavailable(m),
    }
}

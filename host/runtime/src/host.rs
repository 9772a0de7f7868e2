//! The sequence every caller of the runtime follows, in one place: find the skill, validate the
//! input against what it declares, load it, bind its connection, invoke it.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use skillhost_contract::error::Failure;
use skillhost_upstream::connections::Connection;
use skillhost_upstream::outbound::Connector;

use crate::capabilities::state::{StateGrant, StateStore};
use crate::capabilities::{Capabilities, RowSink};
use crate::compile_cache::CompileCache;
use crate::limits::SandboxLimits;
use crate::registry::{RegistryLimits, SkillRegistry, SkillSource};
use crate::sandbox::{Invocation, LoadedSkill, Runtime, RuntimeOptions};

/// A runtime, the skills it found, and the process's outbound state.
pub struct SkillHost {
    runtime: Runtime,
    registry: SkillRegistry,
    connector: Arc<Connector>,
    state: Option<StateStore>,
}

/// An invocation ready to run: input validated, connection bound, component loaded.
pub struct PreparedInvocation {
    /// The component and its manifest.
    pub skill: LoadedSkill,
    /// The validated input, defaults applied.
    pub input: Map<String, Value>,
    /// What it may reach.
    pub capabilities: Capabilities,
    /// Its limits.
    pub limits: SandboxLimits,
}

impl SkillHost {
    /// Starts the engine and scans `sources` with the registry's default limits.
    pub async fn open(
        options: RuntimeOptions,
        cache: CompileCache,
        sources: Vec<SkillSource>,
        connector: Arc<Connector>,
    ) -> Result<Self, Failure> {
        Self::open_with(
            options,
            RegistryLimits::default(),
            cache,
            sources,
            connector,
        )
        .await
    }

    /// Starts the engine and scans `sources` under `limits`.
    pub async fn open_with(
        options: RuntimeOptions,
        limits: RegistryLimits,
        cache: CompileCache,
        sources: Vec<SkillSource>,
        connector: Arc<Connector>,
    ) -> Result<Self, Failure> {
        let runtime = Runtime::new(options)
            .map_err(|e| Failure::other(format!("cannot start the wasm engine: {e:#}")))?;
        let registry = SkillRegistry::scan_with(&runtime, cache, sources, limits).await;
        Ok(SkillHost {
            runtime,
            registry,
            connector,
            state: None,
        })
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The skills found.
    pub fn registry(&self) -> &SkillRegistry {
        &self.registry
    }

    /// The outbound state (tokens, clients, pacers) shared by every invocation of this host.
    pub fn connector(&self) -> &Arc<Connector> {
        &self.connector
    }

    /// Validates `input` for skill `id`, loads the component, and binds `connection` to the
    /// invocation's deadline. A skill that calls services needs a connection.
    pub fn prepare(
        &self,
        id: &str,
        input: Map<String, Value>,
        connection: Option<Connection>,
        limits: SandboxLimits,
    ) -> Result<PreparedInvocation, Failure> {
        let manifest = &self.registry.get(id)?.manifest;
        let input = crate::input::validate(manifest, input).map_err(|e| {
            Failure::usage(e.0).with_hint(format!(
                "`skillhost skills describe {id}` lists the parameters"
            ))
        })?;
        // Loaded (compiled, if the cache lacks it) before the connection is bound: the
        // invocation's deadline starts with the binding and must not pay for compiling.
        let skill = self.registry.load(&self.runtime, id)?;
        let capabilities = match connection {
            None if !manifest.services.is_empty() => {
                return Err(Failure::usage(format!(
                    "skill `{id}` calls {} and needs a connection: pass --connection NAME",
                    manifest.services.join(", ")
                )));
            }
            None => Capabilities::none(),
            Some(connection) => {
                // State is kept per (tenant, connection, skill): the scope is the host's.
                let grant = match &self.state {
                    Some(store) => Some(StateGrant::for_run(store, &connection, id)?),
                    None => None,
                };
                let bound = self
                    .connector
                    .bind(connection, Instant::now() + limits.timeout)
                    .map_err(Failure::usage)?;
                let capabilities = Capabilities::bound(bound);
                match grant {
                    Some(grant) => capabilities.with_state(grant),
                    None => capabilities,
                }
            }
        };
        Ok(PreparedInvocation {
            skill,
            input,
            capabilities,
            limits,
        })
    }

    /// Keeps the state of the skills it runs (contract 0.2) in `store`; without one, a skill's
    /// `state` calls answer `unavailable`.
    pub fn set_state(&mut self, store: StateStore) {
        self.state = Some(store);
    }

    /// The state store, if one was set.
    pub fn state(&self) -> Option<&StateStore> {
        self.state.as_ref()
    }

    /// Runs a prepared invocation; a dataset's rows go to `rows` as they come.
    pub async fn invoke(
        &self,
        prepared: PreparedInvocation,
        rows: Box<dyn RowSink>,
    ) -> Result<Invocation, Failure> {
        self.runtime
            .invoke(
                &prepared.skill,
                &prepared.input,
                prepared.capabilities,
                rows,
                prepared.limits,
            )
            .await
    }
}

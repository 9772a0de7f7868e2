//! The contract versions this host implements, and the dispatch over them.
//!
//! A component names the version it was built against in its imports and in its `guest` export
//! (`skillhost:skill/guest@0.1.0`). [`detect`] reads it and refuses what the host cannot honour;
//! [`SkillPre`] holds a resolved component of any supported version and answers in neutral types.
//! Adding a version is one folder in `wit/`, one bindings module, and one variant here.

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store};

use crate::imports::SkillImports;
use crate::manifest::SkillInfo;
use crate::types::SkillError;
use crate::{v0_1, v0_2};

/// The contract's WIT package name.
pub const CONTRACT_PACKAGE: &str = "skillhost:skill";

/// A contract version this host implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    /// `skillhost:skill@0.1.x`.
    V0_1,
    /// `skillhost:skill@0.2.x`: 0.1 plus `state` and the `conflict` error.
    V0_2,
}

impl ContractVersion {
    /// Every supported version, oldest first.
    pub const ALL: [ContractVersion; 2] = [ContractVersion::V0_1, ContractVersion::V0_2];

    /// The version's major and minor number.
    pub fn major_minor(self) -> (u64, u64) {
        match self {
            ContractVersion::V0_1 => (0, 1),
            ContractVersion::V0_2 => (0, 2),
        }
    }

    fn of(major: u64, minor: u64) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.major_minor() == (major, minor))
    }
}

/// Links the imports of every supported version into `linker`.
pub fn add_to_linker<T: SkillImports + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    v0_1::add_to_linker(linker)?;
    v0_2::add_to_linker(linker)
}

/// A resolved component of some supported contract version.
pub enum SkillPre<T: 'static> {
    /// Built against 0.1.
    V0_1(v0_1::Pre<T>),
    /// Built against 0.2.
    V0_2(v0_2::Pre<T>),
}

impl<T: 'static> Clone for SkillPre<T> {
    fn clone(&self) -> Self {
        match self {
            SkillPre::V0_1(pre) => SkillPre::V0_1(pre.clone()),
            SkillPre::V0_2(pre) => SkillPre::V0_2(pre.clone()),
        }
    }
}

impl<T: Send + 'static> SkillPre<T> {
    /// Wraps a resolved component of `version`, checking its exports.
    pub fn new(version: ContractVersion, pre: InstancePre<T>) -> wasmtime::Result<Self> {
        match version {
            ContractVersion::V0_1 => Ok(SkillPre::V0_1(v0_1::Pre::new(pre)?)),
            ContractVersion::V0_2 => Ok(SkillPre::V0_2(v0_2::Pre::new(pre)?)),
        }
    }

    /// Instantiates in `store` and calls `describe`.
    pub async fn describe(&self, store: &mut Store<T>) -> wasmtime::Result<SkillInfo> {
        match self {
            SkillPre::V0_1(pre) => pre.describe(store).await,
            SkillPre::V0_2(pre) => pre.describe(store).await,
        }
    }

    /// Instantiates in `store` and calls `invoke(input)`.
    pub async fn invoke(
        &self,
        store: &mut Store<T>,
        input: &str,
    ) -> wasmtime::Result<Result<String, SkillError>> {
        match self {
            SkillPre::V0_1(pre) => pre.invoke(store, input).await,
            SkillPre::V0_2(pre) => pre.invoke(store, input).await,
        }
    }
}

/// Refuses imports the host does not provide and contract versions it does not support.
///
/// Pure on names, so every rule is unit-tested.
pub fn check_import(name: &str) -> Result<(), String> {
    if let Some(rest) = name.strip_prefix(&format!("{CONTRACT_PACKAGE}/")) {
        return contract_version(name, rest).map(|_| ());
    }
    if name.starts_with("wasi:http/") {
        return Err(format!(
            "imports {name}: a skill may not open its own HTTP connections; use the \
             {CONTRACT_PACKAGE}/http import, which the host authenticates and polices"
        ));
    }
    if name.starts_with("wasi:") {
        // Linked from wasmtime-wasi (deny-all); an unknown WASI interface fails at link time.
        return Ok(());
    }
    Err(format!(
        "imports {name}, which this host does not provide (it provides {CONTRACT_PACKAGE} and WASI 0.2)"
    ))
}

fn contract_version(name: &str, rest: &str) -> Result<ContractVersion, String> {
    let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
    let mut parts = version.split('.').map(|p| p.parse::<u64>());
    let found = match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => ContractVersion::of(major, minor),
        _ => None,
    };
    found.ok_or_else(|| {
        let supported: Vec<String> = ContractVersion::ALL
            .iter()
            .map(|v| {
                let (major, minor) = v.major_minor();
                format!("{CONTRACT_PACKAGE}@{major}.{minor}.x")
            })
            .collect();
        format!(
            "uses {name}, but this host supports {}; rebuild the skill against the wit/ folder of \
             this host",
            supported.join(" and ")
        )
    })
}

/// The contract version `component` was built against, read from its `guest` export, after
/// checking every import.
pub fn detect(engine: &Engine, component: &Component) -> Result<ContractVersion, String> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        check_import(name)?;
    }
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let guest = exports
        .iter()
        .find(|name| name.starts_with(&format!("{CONTRACT_PACKAGE}/guest")));
    match guest {
        Some(name) => {
            let rest = &name[CONTRACT_PACKAGE.len() + 1..];
            contract_version(name, rest)
        }
        None => Err(format!(
            "does not export {CONTRACT_PACKAGE}/guest, so it is not a skill (exports: {})",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_imports_of_the_supported_minor_version_are_accepted() {
        assert_eq!(check_import("skillhost:skill/http@0.1.0"), Ok(()));
        assert_eq!(check_import("skillhost:skill/emit@0.1.7"), Ok(()));
        assert_eq!(check_import("skillhost:skill/state@0.2.0"), Ok(()));
        assert_eq!(check_import("wasi:cli/environment@0.2.6"), Ok(()));
        assert_eq!(check_import("wasi:sockets/tcp@0.2.9"), Ok(()));
    }

    #[test]
    fn another_contract_version_is_refused_naming_it() {
        let err = check_import("skillhost:skill/guest@0.3.0").unwrap_err();
        assert_eq!(
            err,
            "uses skillhost:skill/guest@0.3.0, but this host supports skillhost:skill@0.1.x and \
             skillhost:skill@0.2.x; rebuild the skill against the wit/ folder of this host"
        );
        assert!(check_import("skillhost:skill/http").is_err());
    }

    #[test]
    fn wasi_http_and_unknown_interfaces_are_refused_naming_them() {
        assert!(
            check_import("wasi:http/outgoing-handler@0.2.4")
                .unwrap_err()
                .starts_with("imports wasi:http/outgoing-handler@0.2.4: a skill may not open")
        );
        assert!(
            check_import("acme:evil/backdoor@1.0.0")
                .unwrap_err()
                .starts_with("imports acme:evil/backdoor@1.0.0, which this host does not provide")
        );
    }
}

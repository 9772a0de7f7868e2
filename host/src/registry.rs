//! Finds skill components in folders, vets them, and indexes them by ID.
//!
//! Threat: a file in a skills folder may be anything: garbage, a core module, a component that
//! wants `wasi:http` (its own network access around the egress policy), an interface the host
//! never heard of, or a contract version it cannot honour. Each is refused with one line naming
//! the file and the reason, and the other skills still load. Two files claiming one ID are both
//! refused, since running either would be a guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use crate::compile_cache::{CompileCache, FileIndex, Lookup};
use crate::error::Failure;
use crate::manifest::SkillManifest;
use crate::sandbox::{LoadedSkill, Runtime};

/// The contract version this host implements; components must use a semver-compatible one.
pub const CONTRACT_PACKAGE: &str = "skillhost:skill";
/// Supported major.minor of [`CONTRACT_PACKAGE`].
pub const CONTRACT_VERSION: (u64, u64) = (0, 1);

/// A skill found in a folder and described.
#[derive(Debug, Clone)]
pub struct RegisteredSkill {
    /// What it declared.
    pub manifest: SkillManifest,
    /// The component file.
    pub path: PathBuf,
    key: String,
}

/// A file that could not be registered, and why.
#[derive(Debug, Clone)]
pub struct LoadProblem {
    /// The file.
    pub path: PathBuf,
    /// One line on what is wrong.
    pub message: String,
}

/// The skills of a set of folders, by ID.
pub struct SkillRegistry {
    skills: BTreeMap<String, RegisteredSkill>,
    duplicates: BTreeMap<String, Vec<PathBuf>>,
    problems: Vec<LoadProblem>,
    cache: CompileCache,
}

impl SkillRegistry {
    /// Scans `dirs` for `*.wasm` files. Manifests come from the compile cache when the exact
    /// component bytes were seen before; otherwise the component is compiled, vetted and asked
    /// to `describe()` itself.
    pub async fn scan(runtime: &Runtime, cache: CompileCache, dirs: &[PathBuf]) -> Self {
        let mut registry = SkillRegistry {
            skills: BTreeMap::new(),
            duplicates: BTreeMap::new(),
            problems: Vec::new(),
            cache,
        };
        let mut files = Vec::new();
        for dir in dirs {
            match std::fs::read_dir(dir) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => registry.problems.push(LoadProblem {
                    path: dir.clone(),
                    message: format!("cannot read skills folder: {e}"),
                }),
            }
        }
        let engine_tag = CompileCache::engine_tag(runtime.engine());
        let mut index = registry.cache.load_index(&engine_tag);
        for path in files {
            match registry.register(runtime, &path, &mut index).await {
                Ok(skill) => registry.insert(skill),
                Err(message) => registry.problems.push(LoadProblem { path, message }),
            }
        }
        registry.cache.store_index(&engine_tag, &index);
        registry
    }

    fn insert(&mut self, skill: RegisteredSkill) {
        let id = skill.manifest.id.clone();
        if let Some(paths) = self.duplicates.get_mut(&id) {
            paths.push(skill.path);
            return;
        }
        if let Some(first) = self.skills.remove(&id) {
            self.duplicates.insert(id, vec![first.path, skill.path]);
            return;
        }
        self.skills.insert(id, skill);
    }

    async fn register(
        &self,
        runtime: &Runtime,
        path: &Path,
        index: &mut FileIndex,
    ) -> Result<RegisteredSkill, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
        // A known, unchanged file: its manifest without reading it.
        if let Some(key) = index.key_for(path, &meta)
            && let Lookup::Hit(manifest) = self.cache.manifest::<SkillManifest>(&key)
        {
            tracing::debug!(path = %path.display(), "manifest from compile cache");
            return Ok(RegisteredSkill {
                manifest,
                path: path.to_path_buf(),
                key,
            });
        }
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let key = CompileCache::key(runtime.engine(), &bytes);
        index.record(path, &meta, &key);
        match self.cache.manifest::<SkillManifest>(&key) {
            Lookup::Hit(manifest) => {
                tracing::debug!(path = %path.display(), "manifest from compile cache");
                return Ok(RegisteredSkill {
                    manifest,
                    path: path.to_path_buf(),
                    key,
                });
            }
            Lookup::Corrupt(why) => tracing::warn!("{why}; rebuilding it"),
            Lookup::Miss => {}
        }
        let component = match self.cached_component(runtime, &key) {
            Some(component) => component,
            None => self.compile(runtime, &key, &bytes)?,
        };
        let pre = runtime
            .prepare(&component)
            .map_err(|e| format!("cannot be linked: {}", first_line(&format!("{e:#}"))))?;
        let info = runtime.describe(&pre).await?;
        let manifest = SkillManifest::from_guest(info)?;
        self.cache.store_manifest(&key, &manifest);
        Ok(RegisteredSkill {
            manifest,
            path: path.to_path_buf(),
            key,
        })
    }

    /// The component stored under `key`, if the cache holds a verified, loadable artifact.
    fn cached_component(&self, runtime: &Runtime, key: &str) -> Option<Component> {
        match self.cache.artifact(key) {
            Lookup::Hit(artifact) => {
                // SAFETY: the payload was produced by `precompile_component` of an engine with
                // the same compatibility hash (part of `key`), and its sha256 was verified just
                // now, so these are the bytes we wrote into our private cache folder.
                match unsafe { Component::deserialize(runtime.engine(), &artifact) } {
                    Ok(component) => {
                        tracing::debug!(key, "loaded from compile cache");
                        Some(component)
                    }
                    Err(e) => {
                        tracing::warn!("compile cache entry {key} unusable ({e}); rebuilding it");
                        None
                    }
                }
            }
            Lookup::Corrupt(why) => {
                tracing::warn!("{why}; rebuilding it");
                None
            }
            Lookup::Miss => None,
        }
    }

    /// Compiles `bytes` (after vetting its imports and exports) and stores the artifact under
    /// `key`. Callers look in the cache first.
    fn compile(&self, runtime: &Runtime, key: &str, bytes: &[u8]) -> Result<Component, String> {
        if !wasmparser_is_component(bytes) {
            return Err(not_a_component(bytes));
        }
        let artifact = runtime.engine().precompile_component(bytes).map_err(|e| {
            format!(
                "is not a valid component: {}",
                first_line(&format!("{e:#}"))
            )
        })?;
        // SAFETY: the artifact was produced by this very engine a moment ago.
        let component = unsafe { Component::deserialize(runtime.engine(), &artifact) }
            .map_err(|e| format!("cannot load its compiled form: {e}"))?;
        check_contract(runtime.engine(), &component)?;
        self.cache.store_artifact(key, &artifact);
        tracing::debug!(key, "compiled (cache miss)");
        Ok(component)
    }

    /// The skill with `id`, ready to invoke: from its verified precompiled artifact when the
    /// cache has it (the component file is not read again), compiled otherwise.
    pub fn load(&self, runtime: &Runtime, id: &str) -> Result<LoadedSkill, Failure> {
        let skill = self.get(id)?;
        let component = match self.cached_component(runtime, &skill.key) {
            Some(component) => component,
            None => {
                let bytes = std::fs::read(&skill.path).map_err(|e| {
                    Failure::other(format!("cannot read {}: {e}", skill.path.display()))
                })?;
                if CompileCache::key(runtime.engine(), &bytes) != skill.key {
                    return Err(Failure::other(format!(
                        "{} changed while skillhost was running; run the command again",
                        skill.path.display()
                    )));
                }
                self.compile(runtime, &skill.key, &bytes)
                    .map_err(|m| Failure::other(format!("{}: {m}", skill.path.display())))?
            }
        };
        let pre = runtime.prepare(&component).map_err(|e| {
            Failure::other(format!("{}: cannot be linked: {e:#}", skill.path.display()))
        })?;
        Ok(LoadedSkill {
            manifest: skill.manifest.clone(),
            pre,
        })
    }

    /// The registered skill with `id`. Unknown IDs list the known ones.
    pub fn get(&self, id: &str) -> Result<&RegisteredSkill, Failure> {
        if let Some(skill) = self.skills.get(id) {
            return Ok(skill);
        }
        if let Some(paths) = self.duplicates.get(id) {
            return Err(Failure::usage(duplicate_message(id, paths))
                .with_hint("remove or rename one of the files"));
        }
        let known: Vec<&str> = self.skills.keys().map(String::as_str).collect();
        Err(Failure::usage(format!(
            "no skill with id `{id}`; known skills: {}",
            if known.is_empty() {
                "(none)".to_string()
            } else {
                known.join(", ")
            }
        ))
        .with_hint("`skillhost skills list` shows them; --skills-dir adds a folder"))
    }

    /// Registered skills, by ID.
    pub fn skills(&self) -> impl Iterator<Item = &RegisteredSkill> {
        self.skills.values()
    }

    /// Files that were refused, with duplicates reported once per ID.
    pub fn problems(&self) -> Vec<LoadProblem> {
        let mut problems = self.problems.clone();
        for (id, paths) in &self.duplicates {
            problems.push(LoadProblem {
                path: paths[0].clone(),
                message: duplicate_message(id, paths),
            });
        }
        problems
    }
}

fn duplicate_message(id: &str, paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!(
        "skill id `{id}` is declared by more than one file: {}",
        names.join(" and ")
    )
}

/// Refuses imports the host does not provide and contract versions it does not support.
///
/// Pure on names, so every rule is unit-tested.
pub fn check_import(name: &str) -> Result<(), String> {
    if let Some(rest) = name.strip_prefix(&format!("{CONTRACT_PACKAGE}/")) {
        return check_contract_version(name, rest);
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

fn check_contract_version(name: &str, rest: &str) -> Result<(), String> {
    let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
    let mut parts = version.split('.').map(|p| p.parse::<u64>());
    let (major, minor) = (parts.next(), parts.next());
    match (major, minor) {
        (Some(Ok(major)), Some(Ok(minor))) if (major, minor) == CONTRACT_VERSION => Ok(()),
        _ => Err(format!(
            "uses {name}, but this host supports {CONTRACT_PACKAGE}@{}.{}.x; rebuild the skill \
             against the wit/ folder of this host",
            CONTRACT_VERSION.0, CONTRACT_VERSION.1
        )),
    }
}

fn check_contract(engine: &wasmtime::Engine, component: &Component) -> Result<(), String> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        check_import(name)?;
    }
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let guest = exports
        .iter()
        .find(|name| name.starts_with(&format!("{CONTRACT_PACKAGE}/guest")));
    match guest {
        Some(name) => check_import(name),
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

/// A component's header: `\0asm`, then version bytes and layer 1 (a core module has layer 0).
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

fn not_a_component(bytes: &[u8]) -> String {
    if bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [0, 0] {
        "is a core WebAssembly module, not a component; build it for wasm32-wasip2 (or wrap it \
         with `wasm-tools component new`)"
            .to_string()
    } else {
        "is not a WebAssembly component (bad magic header); skills are built for wasm32-wasip2"
            .to_string()
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_imports_of_the_supported_minor_version_are_accepted() {
        assert_eq!(check_import("skillhost:skill/http@0.1.0"), Ok(()));
        assert_eq!(check_import("skillhost:skill/emit@0.1.7"), Ok(()));
        assert_eq!(check_import("wasi:cli/environment@0.2.6"), Ok(()));
        assert_eq!(check_import("wasi:sockets/tcp@0.2.9"), Ok(()));
    }

    #[test]
    fn another_contract_version_is_refused_naming_it() {
        let err = check_import("skillhost:skill/guest@0.2.0").unwrap_err();
        assert_eq!(
            err,
            "uses skillhost:skill/guest@0.2.0, but this host supports skillhost:skill@0.1.x; \
             rebuild the skill against the wit/ folder of this host"
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

    #[test]
    fn core_modules_and_garbage_get_distinct_messages() {
        assert!(!wasmparser_is_component(b"\0asm\x01\0\0\0"));
        assert!(wasmparser_is_component(b"\0asm\x0d\0\x01\0"));
        assert!(not_a_component(b"\0asm\x01\0\0\0").starts_with("is a core WebAssembly module"));
        assert!(not_a_component(b"garbage!").starts_with("is not a WebAssembly component"));
    }
}

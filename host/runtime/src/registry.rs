//! Finds skill components in folders, vets them, and indexes them by ID.
//!
//! Threat: a file in a skills folder may be anything: garbage, a core module, a component that
//! wants `wasi:http` (its own network access around the egress policy), an interface the host
//! never heard of, or a contract version it cannot honour. Each is refused with one line naming
//! the file and the reason, and the other skills still load. Two files claiming one ID are both
//! refused, since running either would be a guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use skillhost_contract::error::Failure;
use skillhost_contract::manifest::SkillManifest;
use skillhost_contract::versions;
use wasmtime::component::Component;

use crate::compile_cache::{CompileCache, FileIndex, Lookup};
use crate::sandbox::{LoadedSkill, Runtime};

/// A component compiled into the binary that embeds this crate.
#[derive(Debug)]
pub struct EmbeddedSkill {
    /// Its file name, such as `list_microsoft_defender_incidents.wasm`.
    pub name: &'static str,
    /// The component's bytes.
    pub bytes: &'static [u8],
    /// The sha256 of `bytes`, computed when the binary was built (so no command hashes them).
    pub sha256: [u8; 32],
}

/// Where skills are found.
#[derive(Debug, Clone)]
pub enum SkillSource {
    /// Every `*.wasm` file of a folder.
    Folder(PathBuf),
    /// Components built into the binary.
    Embedded(&'static [EmbeddedSkill]),
}

impl From<PathBuf> for SkillSource {
    fn from(dir: PathBuf) -> Self {
        SkillSource::Folder(dir)
    }
}

impl From<&PathBuf> for SkillSource {
    fn from(dir: &PathBuf) -> Self {
        SkillSource::Folder(dir.clone())
    }
}

/// Where a registered skill's component comes from.
#[derive(Debug, Clone, Copy)]
enum Origin {
    File,
    Embedded(&'static [u8]),
}

/// A skill found in a folder (or built in) and described.
#[derive(Debug, Clone)]
pub struct RegisteredSkill {
    /// What it declared.
    pub manifest: SkillManifest,
    /// The component file (for a built-in skill: `(built in)/NAME`).
    pub path: PathBuf,
    origin: Origin,
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
    /// Scans `sources` (skills folders, built-in components). Manifests come from the compile
    /// cache when the exact component bytes were seen before; otherwise the component is
    /// compiled, vetted and asked to `describe()` itself.
    pub async fn scan<S: Into<SkillSource>>(
        runtime: &Runtime,
        cache: CompileCache,
        sources: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut registry = SkillRegistry {
            skills: BTreeMap::new(),
            duplicates: BTreeMap::new(),
            problems: Vec::new(),
            cache,
        };
        let engine_tag = CompileCache::engine_tag(runtime.engine());
        let mut index = registry.cache.load_index(&engine_tag);
        for source in sources {
            match source.into() {
                SkillSource::Folder(dir) => {
                    for path in registry.component_files(&dir) {
                        match registry.register_file(runtime, &path, &mut index).await {
                            Ok(skill) => registry.insert(skill),
                            Err(message) => registry.problems.push(LoadProblem { path, message }),
                        }
                    }
                }
                SkillSource::Embedded(skills) => {
                    for skill in skills {
                        let path = Path::new("(built in)").join(skill.name);
                        match registry.register_embedded(runtime, skill, &path).await {
                            Ok(skill) => registry.insert(skill),
                            Err(message) => registry.problems.push(LoadProblem { path, message }),
                        }
                    }
                }
            }
        }
        registry.cache.store_index(&engine_tag, &index);
        registry
    }

    /// The `*.wasm` files of `dir`, sorted; an unreadable folder is reported.
    fn component_files(&mut self, dir: &Path) -> Vec<PathBuf> {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
                    .collect();
                found.sort();
                found
            }
            Err(e) => {
                self.problems.push(LoadProblem {
                    path: dir.to_path_buf(),
                    message: format!("cannot read skills folder: {e}"),
                });
                Vec::new()
            }
        }
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

    async fn register_file(
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
                origin: Origin::File,
                key,
            });
        }
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let key = CompileCache::key(runtime.engine(), &bytes);
        index.record(path, &meta, &key);
        let manifest = self.describe(runtime, &key, &bytes).await?;
        Ok(RegisteredSkill {
            manifest,
            path: path.to_path_buf(),
            origin: Origin::File,
            key,
        })
    }

    async fn register_embedded(
        &self,
        runtime: &Runtime,
        skill: &'static EmbeddedSkill,
        path: &Path,
    ) -> Result<RegisteredSkill, String> {
        let key = CompileCache::key_of_digest(runtime.engine(), &skill.sha256);
        let manifest = self.describe(runtime, &key, skill.bytes).await?;
        Ok(RegisteredSkill {
            manifest,
            path: path.to_path_buf(),
            origin: Origin::Embedded(skill.bytes),
            key,
        })
    }

    /// The manifest of the component `bytes` stored under `key`: from the cache, or by
    /// compiling, vetting and asking the component to describe itself.
    async fn describe(
        &self,
        runtime: &Runtime,
        key: &str,
        bytes: &[u8],
    ) -> Result<SkillManifest, String> {
        match self.cache.manifest::<SkillManifest>(key) {
            Lookup::Hit(manifest) => {
                tracing::debug!(key, "manifest from compile cache");
                return Ok(manifest);
            }
            Lookup::Corrupt(why) => tracing::warn!("{why}; rebuilding it"),
            Lookup::Miss => {}
        }
        let component = match self.cached_component(runtime, key) {
            Some(component) => component,
            None => self.compile(runtime, key, bytes)?,
        };
        let version = versions::detect(runtime.engine(), &component)?;
        let pre = runtime
            .prepare(&component, version)
            .map_err(|e| format!("cannot be linked: {}", first_line(&format!("{e:#}"))))?;
        let info = runtime.describe(&pre).await?;
        let manifest = SkillManifest::from_guest(info)?;
        self.cache.store_manifest(key, &manifest);
        Ok(manifest)
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
        versions::detect(runtime.engine(), &component)?;
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
            None => self.compile_registered(runtime, skill)?,
        };
        let version = versions::detect(runtime.engine(), &component)
            .map_err(|m| Failure::other(format!("{}: {m}", skill.path.display())))?;
        let pre = runtime.prepare(&component, version).map_err(|e| {
            Failure::other(format!("{}: cannot be linked: {e:#}", skill.path.display()))
        })?;
        Ok(LoadedSkill {
            manifest: skill.manifest.clone(),
            pre,
        })
    }

    /// Compiles a registered skill whose artifact is not in the cache (a file is read again and
    /// must still be the component that was described).
    fn compile_registered(
        &self,
        runtime: &Runtime,
        skill: &RegisteredSkill,
    ) -> Result<Component, Failure> {
        let bytes = match skill.origin {
            Origin::Embedded(bytes) => bytes.to_vec(),
            Origin::File => {
                let bytes = std::fs::read(&skill.path).map_err(|e| {
                    Failure::other(format!("cannot read {}: {e}", skill.path.display()))
                })?;
                if CompileCache::key(runtime.engine(), &bytes) != skill.key {
                    return Err(Failure::other(format!(
                        "{} changed while skillhost was running; run the command again",
                        skill.path.display()
                    )));
                }
                bytes
            }
        };
        self.compile(runtime, &skill.key, &bytes)
            .map_err(|m| Failure::other(format!("{}: {m}", skill.path.display())))
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
        .with_hint(
            "`skillhost skills list` shows them; --skills-dir DIR (repeatable) replaces the \
             default skills (the built-in ones and $SKILLHOST_SKILLS) with the folders given",
        ))
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
    fn core_modules_and_garbage_get_distinct_messages() {
        assert!(!wasmparser_is_component(b"\0asm\x01\0\0\0"));
        assert!(wasmparser_is_component(b"\0asm\x0d\0\x01\0"));
        assert!(not_a_component(b"\0asm\x01\0\0\0").starts_with("is a core WebAssembly module"));
        assert!(not_a_component(b"garbage!").starts_with("is not a WebAssembly component"));
    }
}

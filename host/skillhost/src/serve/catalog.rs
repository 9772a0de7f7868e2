//! The skills a server offers, swapped whole when the skills folders change.
//!
//! Threat: a component dropped into a folder of a running server may be broken, hostile or half
//! copied. It goes through the registry's vetting like at start; only a component that passed
//! replaces the version in service, and the swap is one pointer store, so a request sees either
//! the old catalog or the new one, never a mix. An invocation holds its skill (an `Arc`) from
//! start to end, so it finishes on the version it started with. A file that was refused leaves
//! the working version of its skill in service and is listed with the reason; a skill leaves
//! the catalog only when its file is gone.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use skillhost_contract::manifest::SkillManifest;
use skillhost_runtime::compile_cache::CompileCache;
use skillhost_runtime::registry::{LoadProblem, RegistryLimits, SkillRegistry, SkillSource};
use skillhost_runtime::sandbox::{LoadedSkill, Runtime};

/// One skill in service: loaded once, shared by every invocation of this version.
pub struct ServedSkill {
    /// The component, imports resolved, and its manifest.
    pub loaded: LoadedSkill,
    /// `sha256:HEX` of the component.
    pub digest: String,
    /// Its file (or `(built in)/NAME`).
    pub path: PathBuf,
}

impl ServedSkill {
    /// What it declared.
    pub fn manifest(&self) -> &SkillManifest {
        &self.loaded.manifest
    }
}

/// The skills in service and the files refused, as of one scan.
#[derive(Default)]
pub struct Catalog {
    /// Skills by ID.
    pub skills: BTreeMap<String, Arc<ServedSkill>>,
    /// Files that were refused, and why.
    pub refused: Vec<LoadProblem>,
}

/// The folders' contents as seen by a cheap listing: name, length and modification time of
/// each `*.wasm`. A change means a scan.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl Fingerprint {
    /// Lists the `*.wasm` files of the folders among `sources`.
    pub fn of(sources: &[SkillSource]) -> Self {
        let mut files = Vec::new();
        for source in sources {
            let SkillSource::Folder(dir) = source else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "wasm") {
                    let meta = std::fs::metadata(&path).ok();
                    files.push((
                        path,
                        meta.as_ref().map_or(0, |m| m.len()),
                        meta.and_then(|m| m.modified().ok()),
                    ));
                }
            }
        }
        files.sort();
        Fingerprint(files)
    }
}

/// The catalog in service and what builds the next one.
pub struct Skills {
    current: RwLock<Arc<Catalog>>,
    sources: Vec<SkillSource>,
    cache: CompileCache,
    limits: RegistryLimits,
    fingerprint: std::sync::Mutex<Fingerprint>,
}

impl Skills {
    /// Scans `sources` and loads every skill found.
    pub async fn open(
        runtime: &Runtime,
        sources: Vec<SkillSource>,
        cache: CompileCache,
        limits: RegistryLimits,
    ) -> Self {
        let fingerprint = Fingerprint::of(&sources);
        let skills = Skills {
            current: RwLock::new(Arc::new(Catalog::default())),
            sources,
            cache,
            limits,
            fingerprint: std::sync::Mutex::new(fingerprint),
        };
        let catalog = skills.build(runtime, &Catalog::default()).await;
        *skills
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(catalog);
        skills
    }

    /// The catalog in service now.
    pub fn current(&self) -> Arc<Catalog> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Scans again if the folders changed since the last scan; true if a new catalog went into
    /// service.
    pub async fn rescan_if_changed(&self, runtime: &Runtime) -> bool {
        let now = Fingerprint::of(&self.sources);
        {
            let mut seen = self
                .fingerprint
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *seen == now {
                return false;
            }
            *seen = now;
        }
        let previous = self.current();
        let next = self.build(runtime, &previous).await;
        for problem in &next.refused {
            if !previous
                .refused
                .iter()
                .any(|p| p.path == problem.path && p.message == problem.message)
            {
                tracing::warn!(
                    "skill file {} refused: {}",
                    skillhost_contract::text::escape(&problem.path.display().to_string()),
                    skillhost_contract::text::escape(&problem.message)
                );
            }
        }
        for (id, skill) in &next.skills {
            match previous.skills.get(id) {
                Some(old) if Arc::ptr_eq(old, skill) => {}
                Some(_) => tracing::info!(skill = %id, digest = %skill.digest, "skill replaced"),
                None => tracing::info!(skill = %id, digest = %skill.digest, "skill added"),
            }
        }
        for id in previous.skills.keys() {
            if !next.skills.contains_key(id) {
                tracing::info!(skill = %id, "skill removed (its file is gone)");
            }
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        true
    }

    /// The catalog of the folders now, reusing what `previous` had loaded of unchanged skills.
    async fn build(&self, runtime: &Runtime, previous: &Catalog) -> Catalog {
        let registry = SkillRegistry::scan_with(
            runtime,
            self.cache.clone(),
            self.sources.clone(),
            self.limits,
        )
        .await;
        let mut skills = BTreeMap::new();
        let mut refused = registry.problems();
        for registered in registry.skills() {
            let id = registered.manifest.id.clone();
            let digest = registered.digest();
            if let Some(old) = previous.skills.get(&id)
                && old.digest == digest
            {
                skills.insert(id, old.clone());
                continue;
            }
            match registry.load(runtime, &id) {
                Ok(loaded) => {
                    skills.insert(
                        id,
                        Arc::new(ServedSkill {
                            loaded,
                            digest,
                            path: registered.path.clone(),
                        }),
                    );
                }
                Err(failure) => refused.push(LoadProblem {
                    path: registered.path.clone(),
                    message: failure.message,
                }),
            }
        }
        // A skill whose file is still there but was refused (a broken drop-in over a working
        // version, or a second file claiming its ID) stays in service as it was.
        for (id, old) in &previous.skills {
            if !skills.contains_key(id) && still_there(&old.path, &refused) {
                skills.insert(id.clone(), old.clone());
            }
        }
        Catalog { skills, refused }
    }
}

/// Whether a skill's file still exists (a built-in one always does), or was refused under its
/// path.
fn still_there(path: &std::path::Path, refused: &[LoadProblem]) -> bool {
    path.starts_with("(built in)") || path.exists() || refused.iter().any(|p| p.path == path)
}

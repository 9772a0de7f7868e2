//! Finds skill components in folders, vets them, and indexes them by ID.
//!
//! Threat: a file in a skills folder may be anything: garbage, a core module, a component that
//! wants `wasi:http` (its own network access around the egress policy), an interface the host
//! never heard of, or a contract version it cannot honour. Each is refused with one line naming
//! the file and the reason, and the other skills still load. Two files claiming one ID are both
//! refused, since running either would be a guess.
//!
//! The registry runs on every command, so a file must not be able to make every command slow or
//! kill the host:
//! - only regular files are read: a `*.wasm` that is (or links to) a FIFO, a device, a socket or
//!   a folder is skipped without being opened for reading (and is opened non-blocking, so one
//!   swapped in meanwhile cannot hang the host either);
//! - a file larger than [`RegistryLimits::max_component_bytes`] is skipped before it is opened,
//!   and no read goes past the size the file announced (plus one probe): a file of `/proc` that
//!   says 0 bytes but holds gigabytes (`/proc/self/pagemap`) is refused after 4 KiB;
//! - `describe()` answers are capped (see `skillhost_contract::manifest`), in linear time;
//! - a component that fails (compiling, vetting, linking, `describe()` trapping, timing out or
//!   answering beyond the caps) is refused once: the reason is recorded in the compile cache
//!   under the component's key and repeated by later commands without compiling or
//!   instantiating it again. A changed file has a new key and is tried again.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use skillhost_contract::error::Failure;
use skillhost_contract::manifest::SkillManifest;
use skillhost_contract::versions;
use wasmtime::component::Component;

use crate::compile_cache::{CacheKey, CompileCache, FileIndex, Lookup};
use crate::limits::human_bytes;
use crate::sandbox::{LoadedSkill, Runtime};

/// The default of [`RegistryLimits::max_component_bytes`]: 64 MiB. The Defender skills are a few
/// hundred KiB; a Python skill built with componentize-py, interpreter included, is about 18 MB.
pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// Bytes read past a file's announced size, to find out that it holds more than it says. A
/// multiple of 8, since some files of `/proc` refuse reads of other sizes.
const SIZE_PROBE: usize = 4096;

/// What the registry accepts of a skills folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLimits {
    /// The largest component file, in bytes (default [`DEFAULT_MAX_COMPONENT_BYTES`], 64 MiB). A
    /// larger file is skipped without being read.
    pub max_component_bytes: u64,
}

impl Default for RegistryLimits {
    fn default() -> Self {
        RegistryLimits {
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
        }
    }
}

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
    /// One component file, whatever its name (`skillhost skills check`).
    File(PathBuf),
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
    key: CacheKey,
}

impl RegisteredSkill {
    /// The sha256 of the component's bytes, as `sha256:HEX`.
    pub fn digest(&self) -> String {
        let mut text = String::with_capacity(71);
        text.push_str("sha256:");
        for byte in self.key.component_sha256() {
            text.push_str(&format!("{byte:02x}"));
        }
        text
    }
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
    limits: RegistryLimits,
}

impl SkillRegistry {
    /// Scans `sources` (skills folders, built-in components) with the default
    /// [`RegistryLimits`]. Manifests (and refusals) come from the compile cache when the exact
    /// component bytes were seen before; otherwise the component is compiled, vetted and asked
    /// to `describe()` itself.
    pub async fn scan<S: Into<SkillSource>>(
        runtime: &Runtime,
        cache: CompileCache,
        sources: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::scan_with(runtime, cache, sources, RegistryLimits::default()).await
    }

    /// [`SkillRegistry::scan`] with `limits`.
    pub async fn scan_with<S: Into<SkillSource>>(
        runtime: &Runtime,
        cache: CompileCache,
        sources: impl IntoIterator<Item = S>,
        limits: RegistryLimits,
    ) -> Self {
        let mut registry = SkillRegistry {
            skills: BTreeMap::new(),
            duplicates: BTreeMap::new(),
            problems: Vec::new(),
            cache,
            limits,
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
                SkillSource::File(path) => {
                    match registry.register_file(runtime, &path, &mut index).await {
                        Ok(skill) => registry.insert(skill),
                        Err(message) => registry.problems.push(LoadProblem { path, message }),
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

    /// The `*.wasm` entries of `dir` of any type, sorted (one that is not a regular file is
    /// reported when registered); an unreadable folder is reported.
    fn component_files(&mut self, dir: &Path) -> Vec<PathBuf> {
        match fs::read_dir(dir) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
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
        let cap = self.limits.max_component_bytes;
        // Follows a symlink: what matters is what would be read.
        let meta = fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
        check_component_file(&meta, cap)?;
        // A known, unchanged file: its manifest (or why it was refused) without reading it.
        if let Some(key) = index.key_for(path, &meta)
            && let Some(known) = self.remembered(&key, path)
        {
            let manifest = known?;
            return Ok(RegisteredSkill {
                manifest,
                path: path.to_path_buf(),
                origin: Origin::File,
                key,
            });
        }
        let (bytes, meta) = read_component(path, cap)?;
        let key = CompileCache::key(runtime.engine(), &bytes);
        index.record(path, &meta, &key);
        let manifest = self.describe(runtime, &key, &bytes, path).await?;
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
        let manifest = self.describe(runtime, &key, skill.bytes, path).await?;
        Ok(RegisteredSkill {
            manifest,
            path: path.to_path_buf(),
            origin: Origin::Embedded(skill.bytes),
            key,
        })
    }

    /// What the cache remembers of the component of `key`: its manifest, or why it was refused.
    /// `None`: nothing (verified) is known, so it must be compiled and described.
    fn remembered(&self, key: &CacheKey, path: &Path) -> Option<Result<SkillManifest, String>> {
        match self.cache.manifest::<SkillManifest>(key) {
            Lookup::Hit(manifest) => {
                tracing::debug!(path = %path.display(), "manifest from compile cache");
                return Some(Ok(manifest));
            }
            Lookup::Corrupt(why) => tracing::warn!("{why}; rebuilding it"),
            Lookup::Miss => {}
        }
        match self.cache.refusal(key) {
            Lookup::Hit(reason) => {
                tracing::debug!(path = %path.display(), "refusal from compile cache");
                Some(Err(reason))
            }
            Lookup::Corrupt(why) => {
                tracing::warn!("{why}; rebuilding it");
                None
            }
            Lookup::Miss => None,
        }
    }

    /// The manifest of the component `bytes` whose key is `key`: from the cache, or by
    /// compiling, vetting and asking the component to describe itself. The outcome is recorded,
    /// a refusal as much as a manifest, so that the next command pays for neither.
    async fn describe(
        &self,
        runtime: &Runtime,
        key: &CacheKey,
        bytes: &[u8],
        path: &Path,
    ) -> Result<SkillManifest, String> {
        if let Some(known) = self.remembered(key, path) {
            return known;
        }
        let outcome = self.vet_and_describe(runtime, key, bytes).await;
        match &outcome {
            Ok(manifest) => self.cache.store_manifest(key, manifest),
            Err(reason) => self.cache.store_refusal(key, reason),
        }
        outcome
    }

    /// Compiles (or loads) the component, vets its imports and exports, links it, and asks it to
    /// `describe()` itself within the describe budget; the answer must pass the manifest caps.
    async fn vet_and_describe(
        &self,
        runtime: &Runtime,
        key: &CacheKey,
        bytes: &[u8],
    ) -> Result<SkillManifest, String> {
        let component = match self.cached_component(runtime, key) {
            Some(component) => component,
            None => self.compile(runtime, key, bytes)?,
        };
        let version = versions::detect(runtime.engine(), &component)?;
        let pre = runtime
            .prepare(&component, version)
            .map_err(|e| format!("cannot be linked: {}", first_line(&format!("{e:#}"))))?;
        tracing::debug!(key = %key, "calling describe()");
        let info = runtime.describe(&pre).await?;
        SkillManifest::from_guest(info)
    }

    /// The component stored under `key`, if the cache holds a verified, loadable artifact.
    fn cached_component(&self, runtime: &Runtime, key: &CacheKey) -> Option<Component> {
        match self.cache.artifact(key) {
            Lookup::Hit(artifact) => {
                // SAFETY: these bytes were produced by `precompile_component` of an engine with
                // the same compatibility hash (part of `key`) from the component `key` names:
                // their HMAC under the cache's private key, over `key`, that component's sha256
                // and these very bytes (held in memory, not read again), was verified just now,
                // in a folder and file that only this user can write.
                match unsafe { Component::deserialize(runtime.engine(), &artifact) } {
                    Ok(component) => {
                        tracing::debug!(key = %key, "loaded from compile cache");
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
    fn compile(
        &self,
        runtime: &Runtime,
        key: &CacheKey,
        bytes: &[u8],
    ) -> Result<Component, String> {
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
            // With the pooling allocator (`serve`), a component needing more memories, tables or
            // instances than one invocation's slot holds is refused here.
            .map_err(|e| format!("cannot be loaded: {}", first_line(&format!("{e:#}"))))?;
        versions::detect(runtime.engine(), &component)?;
        self.cache.store_artifact(key, &artifact);
        tracing::debug!(key = %key, "compiled (cache miss)");
        Ok(component)
    }

    /// The skill with `id`, ready to invoke: from its verified precompiled artifact when the
    /// cache has it (the component file is not read again), compiled otherwise.
    pub fn load(&self, runtime: &Runtime, id: &str) -> Result<LoadedSkill, Failure> {
        let skill = self.get(id)?;
        let component = self.component(runtime, id)?;
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

    /// The compiled component of the skill with `id`: its verified precompiled artifact when the
    /// cache has it, compiled otherwise.
    pub fn component(&self, runtime: &Runtime, id: &str) -> Result<Component, Failure> {
        let skill = self.get(id)?;
        match self.cached_component(runtime, &skill.key) {
            Some(component) => Ok(component),
            None => self.compile_registered(runtime, skill),
        }
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
                let (bytes, _) = read_component(&skill.path, self.limits.max_component_bytes)
                    .map_err(|m| Failure::other(format!("{}: {m}", skill.path.display())))?;
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

/// Refuses what is not a regular file, or is larger than `cap`, from its metadata alone.
fn check_component_file(meta: &fs::Metadata, cap: u64) -> Result<(), String> {
    if !meta.is_file() {
        return Err(format!("is {}, not a regular file", file_kind(meta)));
    }
    if meta.len() > cap {
        return Err(format!(
            "is {} bytes, over the limit of {} for a component file",
            meta.len(),
            human_bytes(usize::try_from(cap).unwrap_or(usize::MAX))
        ));
    }
    Ok(())
}

/// What kind of file `meta` describes, for a message.
fn file_kind(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// The bytes of the component file at `path` and the metadata of the file read. Opened without
/// blocking (a FIFO swapped in after the caller's check is refused, not waited on) and checked
/// again on the open file; never reads more than its announced size plus [`SIZE_PROBE`].
fn read_component(path: &Path, cap: u64) -> Result<(Vec<u8>, fs::Metadata), String> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    check_component_file(&meta, cap)?;
    let expected = usize::try_from(meta.len()).map_err(|_| "is too large to read".to_string())?;
    tracing::debug!(path = %path.display(), bytes = expected, "reading component file");
    let mut bytes = vec![0u8; expected + SIZE_PROBE];
    let mut filled = 0;
    loop {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled > expected {
                    return Err(format!(
                        "reads as more than the {expected} bytes its size says (as files of \
                         /proc and /sys do, or a file still being written)"
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read: {e}")),
        }
    }
    if filled < expected {
        return Err(format!(
            "changed while it was read ({filled} of {expected} bytes); run the command again"
        ));
    }
    bytes.truncate(filled);
    Ok((bytes, meta))
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

    /// A fresh folder under the temporary folder, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("skillhost-registry-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_file_over_the_cap_is_refused_from_its_size_alone() {
        let dir = Scratch::new("cap");
        let path = dir.0.join("big.wasm");
        fs::File::create(&path).unwrap().set_len(2 << 30).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(
            check_component_file(&meta, DEFAULT_MAX_COMPONENT_BYTES),
            Err("is 2147483648 bytes, over the limit of 64 MiB for a component file".to_string())
        );
        assert_eq!(
            read_component(&path, DEFAULT_MAX_COMPONENT_BYTES).unwrap_err(),
            "is 2147483648 bytes, over the limit of 64 MiB for a component file"
        );
    }

    #[test]
    fn a_file_at_the_cap_is_read_whole() {
        let dir = Scratch::new("at-cap");
        let path = dir.0.join("ok.wasm");
        fs::write(&path, vec![7u8; 1000]).unwrap();
        let (bytes, meta) = read_component(&path, 1000).unwrap();
        assert_eq!(bytes, vec![7u8; 1000]);
        assert_eq!(meta.len(), 1000);
        assert_eq!(
            read_component(&path, 999).unwrap_err(),
            "is 1000 bytes, over the limit of 999 bytes for a component file"
        );
    }

    #[test]
    fn a_fifo_and_a_folder_are_refused_without_blocking() {
        let dir = Scratch::new("fifo");
        let fifo = dir.0.join("fifo.wasm");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let meta = fs::metadata(&fifo).unwrap();
        assert_eq!(
            check_component_file(&meta, DEFAULT_MAX_COMPONENT_BYTES),
            Err("is a named pipe (FIFO), not a regular file".to_string())
        );
        // Even when opened (as if swapped in after the check), it does not wait for a writer.
        assert_eq!(
            read_component(&fifo, DEFAULT_MAX_COMPONENT_BYTES).unwrap_err(),
            "is a named pipe (FIFO), not a regular file"
        );
        assert_eq!(
            read_component(&dir.0, DEFAULT_MAX_COMPONENT_BYTES).unwrap_err(),
            "is a folder, not a regular file"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_proc_file_that_says_zero_bytes_is_refused_after_one_probe() {
        assert_eq!(
            read_component(Path::new("/proc/self/pagemap"), DEFAULT_MAX_COMPONENT_BYTES)
                .unwrap_err(),
            "reads as more than the 0 bytes its size says (as files of /proc and /sys do, or a \
             file still being written)"
        );
    }
}

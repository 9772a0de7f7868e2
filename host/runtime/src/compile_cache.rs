//! The on-disk cache of precompiled components and their manifests.
//!
//! Entries are keyed by the sha256 of the component's bytes, the engine's compatibility hash and
//! the host's version, so a changed component, engine setting or host never reuses an old entry.
//!
//! Threat: a precompiled artifact is native code that wasmtime maps and runs without validation,
//! so a tampered or truncated file would be memory-unsafe. Every artifact carries the sha256 of
//! its payload and is verified before it is deserialized; a mismatch is rebuilt, never trusted.
//! The cache folder is created private (0700) and refused when other users can write to it,
//! because the digest guards against corruption, not against someone who may rewrite both.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"SKHC0001";

/// A cache folder, or none (every load compiles).
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// What a lookup found.
pub enum Lookup<T> {
    /// A verified entry.
    Hit(T),
    /// No entry.
    Miss,
    /// An entry that failed verification; it has been removed and must be rebuilt.
    Corrupt(String),
}

impl CompileCache {
    /// Uses `dir` (created private if missing). Falls back to no cache, with a warning, when the
    /// folder cannot be created or is writable by other users.
    pub fn open(dir: PathBuf) -> Self {
        match prepare_private_dir(&dir) {
            Ok(()) => CompileCache { dir: Some(dir) },
            Err(reason) => {
                tracing::warn!(
                    "not using compile cache {}: {reason}; components will be compiled on every run",
                    dir.display()
                );
                CompileCache { dir: None }
            }
        }
    }

    /// A cache that stores nothing.
    pub fn disabled() -> Self {
        CompileCache { dir: None }
    }

    /// The default folder: `$SKILLHOST_CACHE_DIR`, else `$XDG_CACHE_HOME/skillhost`, else
    /// `$HOME/.cache/skillhost`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("SKILLHOST_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return Some(PathBuf::from(dir).join("skillhost"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/skillhost"))
    }

    /// The cache key of a component's bytes under `engine`.
    pub fn key(engine: &wasmtime::Engine, component: &[u8]) -> String {
        Self::key_of_digest(engine, &Sha256::digest(component).into())
    }

    /// The cache key of a component whose sha256 is `digest` (known ahead, as for the skills
    /// built into the binary).
    pub fn key_of_digest(engine: &wasmtime::Engine, digest: &[u8; 32]) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.0.update(digest);
        hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hex(&hasher.0.finalize())
    }

    /// What identifies `engine` (and this host) in the file index.
    pub fn engine_tag(engine: &wasmtime::Engine) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hex(&hasher.0.finalize()[..8])
    }

    /// The file index: component paths with their size, mtime and cache key, so that a command
    /// finds a known component's entries without reading and hashing it. A file whose size or
    /// mtime changed is read and hashed again. (Rewriting a component while keeping both would
    /// keep its previous, already vetted build in use until either changes.)
    pub fn load_index(&self, engine_tag: &str) -> FileIndex {
        let entries = self
            .path(&format!("index-{engine_tag}"), "json")
            .and_then(|p| fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        FileIndex {
            entries,
            changed: false,
        }
    }

    /// Writes the index back if it changed.
    pub fn store_index(&self, engine_tag: &str, index: &FileIndex) {
        if index.changed
            && let (Some(path), Ok(bytes)) = (
                self.path(&format!("index-{engine_tag}"), "json"),
                serde_json::to_vec(&index.entries),
            )
        {
            write_atomically(&path, &bytes);
        }
    }

    fn path(&self, key: &str, ext: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.{ext}")))
    }

    /// The verified artifact payload stored under `key`.
    pub fn artifact(&self, key: &str) -> Lookup<Vec<u8>> {
        let Some(path) = self.path(key, "cwasm") else {
            return Lookup::Miss;
        };
        let Ok(bytes) = fs::read(&path) else {
            return Lookup::Miss;
        };
        match verify(&bytes) {
            Some(payload) => Lookup::Hit(payload.to_vec()),
            None => {
                let _ = fs::remove_file(&path);
                Lookup::Corrupt(format!("{} failed its integrity check", path.display()))
            }
        }
    }

    /// Stores an artifact payload under `key` (atomically: a reader never sees half a file).
    pub fn store_artifact(&self, key: &str, payload: &[u8]) {
        if let Some(path) = self.path(key, "cwasm") {
            let mut framed = Vec::with_capacity(payload.len() + 40);
            framed.extend_from_slice(MAGIC);
            framed.extend_from_slice(&Sha256::digest(payload));
            framed.extend_from_slice(payload);
            write_atomically(&path, &framed);
        }
    }

    /// The manifest JSON stored under `key`, if it parses as `T`.
    pub fn manifest<T: serde::de::DeserializeOwned>(&self, key: &str) -> Lookup<T> {
        let Some(path) = self.path(key, "json") else {
            return Lookup::Miss;
        };
        let Ok(bytes) = fs::read(&path) else {
            return Lookup::Miss;
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Lookup::Hit(value),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Lookup::Corrupt(format!("{} is not a valid manifest: {e}", path.display()))
            }
        }
    }

    /// Stores a manifest under `key`.
    pub fn store_manifest<T: serde::Serialize>(&self, key: &str, manifest: &T) {
        if let (Some(path), Ok(bytes)) = (self.path(key, "json"), serde_json::to_vec(manifest)) {
            write_atomically(&path, &bytes);
        }
    }
}

/// Known component files: path → (size, mtime, cache key).
#[derive(Debug, Default)]
pub struct FileIndex {
    entries: std::collections::BTreeMap<String, IndexEntry>,
    changed: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct IndexEntry {
    len: u64,
    mtime_s: i64,
    mtime_ns: u32,
    key: String,
}

fn file_stamp(meta: &fs::Metadata) -> Option<(u64, i64, u32)> {
    let modified = meta.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((meta.len(), since.as_secs() as i64, since.subsec_nanos()))
}

impl FileIndex {
    /// The cache key recorded for `path`, if its size and mtime are unchanged.
    pub fn key_for(&self, path: &Path, meta: &fs::Metadata) -> Option<String> {
        let (len, mtime_s, mtime_ns) = file_stamp(meta)?;
        let entry = self.entries.get(&path.display().to_string())?;
        (entry.len == len && entry.mtime_s == mtime_s && entry.mtime_ns == mtime_ns)
            .then(|| entry.key.clone())
    }

    /// Records `key` for `path` as it is now.
    pub fn record(&mut self, path: &Path, meta: &fs::Metadata, key: &str) {
        if let Some((len, mtime_s, mtime_ns)) = file_stamp(meta) {
            let entry = IndexEntry {
                len,
                mtime_s,
                mtime_ns,
                key: key.to_string(),
            };
            let name = path.display().to_string();
            if self.entries.get(&name) != Some(&entry) {
                self.entries.insert(name, entry);
                self.changed = true;
            }
        }
    }
}

fn verify(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (digest, payload) = rest.split_at(32);
    (Sha256::digest(payload).as_slice() == digest).then_some(payload)
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        tracing::warn!("could not write cache entry {}: {e}", path.display());
    }
}

fn prepare_private_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create it: {e}"))?;
        let meta = fs::metadata(dir).map_err(|e| e.to_string())?;
        if meta.mode() & 0o022 != 0 {
            return Err("it is writable by other users; make it private (chmod 700)".into());
        }
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir).map_err(|e| format!("cannot create it: {e}"))?;
    Ok(())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `Hash` input into sha256, so the engine's compatibility hash becomes part of the key
/// without depending on `DefaultHasher`'s unstable algorithm.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_payload_verifies_and_a_flipped_byte_does_not() {
        let payload = b"compiled code".to_vec();
        let mut framed = MAGIC.to_vec();
        framed.extend_from_slice(&Sha256::digest(&payload));
        framed.extend_from_slice(&payload);
        assert_eq!(verify(&framed), Some(payload.as_slice()));
        let last = framed.len() - 1;
        framed[last] ^= 1;
        assert_eq!(verify(&framed), None);
        assert_eq!(verify(b"SKHC0001short"), None);
    }
}

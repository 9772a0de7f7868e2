//! The on-disk cache of precompiled components, their manifests, and the components refused.
//!
//! Entries are keyed by the sha256 of the component's bytes, the engine's compatibility hash, the
//! host's version and the cache's format, so a changed component, engine setting, host or format
//! never reuses an old entry. One key names up to three files: `<key>.cwasm` (the compiled
//! artifact), `<key>.json` (the manifest `describe()` gave) and `<key>.refused` (why the
//! component was refused, so that a component that fails costs its failure once, not on every
//! command). `index-<tag>.json` maps component files to their keys by size and mtime, and `key`
//! holds the cache's private MAC key.
//!
//! Threat: a precompiled artifact is native code that wasmtime maps and runs without validation,
//! so whoever can write the cache folder runs code as the host's user; a manifest, a refusal or an
//! index entry planted there could lie about a skill's id, hide a skill or attach a component's
//! build to another file. Hence:
//! - the folder must belong to the user running skillhost and be writable by nobody else (as
//!   OpenSSH requires of `~/.ssh`); otherwise the cache is not used, with a warning saying how to
//!   fix it (`chown`, `chmod 700`), and every component is compiled in memory. It is created 0700.
//! - every file read from it must be a regular file of that user that no one else may write. It
//!   is opened without following a symlink and checked on the open file, then read once into
//!   memory; the bytes checked are the bytes used (no check-then-reopen).
//! - every entry is authenticated with HMAC-SHA256 under the cache's private key (`key`: 32
//!   random bytes, mode 0600, made on first use) over what the entry is (artifact, manifest,
//!   refusal, index), its cache key, the sha256 of the component it was made from, and its bytes.
//!   A truncated or flipped artifact, one copied over another component's, or one made under
//!   another cache's key fails the check, counts as a miss, and is rebuilt, never run.
//!
//! What this does not stop: someone who already runs code as this user (they can read the key,
//! and need no cache to run code), and root.

use std::fmt;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Part of every cache key: entries of an older layout are never looked up, so they can never be
/// misread (they stay as orphans until the folder is cleared).
const FORMAT: &str = "skillhost-cache-2";
/// The first bytes of an artifact file.
const ARTIFACT_MAGIC: &[u8; 8] = b"SKHC0002";
/// An artifact file: magic, the component's sha256, the MAC, then the artifact's bytes.
const ARTIFACT_HEADER: usize = ARTIFACT_MAGIC.len() + 32 + MAC_LEN;
/// The file holding the cache's MAC key.
const KEY_FILE: &str = "key";
/// Bytes of the MAC key.
const MAC_KEY_LEN: usize = 32;
/// Bytes of an HMAC-SHA256 tag.
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A cache folder, or none (every load compiles).
#[derive(Clone)]
pub struct CompileCache {
    dir: Option<PrivateDir>,
}

/// A cache folder that passed its checks, and its MAC key.
#[derive(Clone)]
struct PrivateDir {
    path: PathBuf,
    mac_key: [u8; MAC_KEY_LEN],
}

impl fmt::Debug for CompileCache {
    // Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompileCache")
            .field("dir", &self.dir.as_ref().map(|d| &d.path))
            .finish()
    }
}

/// What names the entries of one component build: derived from the component's sha256, which it
/// keeps, because every entry is bound to that digest too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    name: String,
    component_sha256: [u8; 32],
}

impl CacheKey {
    /// The key as it appears in file names (64 hex digits).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The sha256 of the component the key was derived from.
    pub fn component_sha256(&self) -> &[u8; 32] {
        &self.component_sha256
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup<T> {
    /// A verified entry.
    Hit(T),
    /// No entry.
    Miss,
    /// An entry that failed verification (its owner, its mode or its MAC); it has been removed
    /// and must be rebuilt. The text says which file and what was wrong.
    Corrupt(String),
}

/// A verified artifact: the file's bytes as read, of which [`AsRef`] gives the compiled
/// component's (after the header), so that the header is never cut off by moving the rest.
pub struct Artifact {
    framed: Vec<u8>,
}

impl AsRef<[u8]> for Artifact {
    fn as_ref(&self) -> &[u8] {
        self.framed.get(ARTIFACT_HEADER..).unwrap_or_default()
    }
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Artifact({} bytes)", self.as_ref().len())
    }
}

/// What an entry is; part of its MAC, so that one kind can never pass for another.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Artifact,
    Manifest,
    Refusal,
    Index,
}

impl Kind {
    fn label(self) -> &'static [u8] {
        match self {
            Kind::Artifact => b"artifact",
            Kind::Manifest => b"manifest",
            Kind::Refusal => b"refusal",
            Kind::Index => b"index",
        }
    }
}

impl CompileCache {
    /// Uses `dir` (created private if missing). Falls back to no cache, with a warning saying how
    /// to fix it, when the folder cannot be created, belongs to another user, is writable by
    /// other users, or its key cannot be read or made.
    pub fn open(dir: PathBuf) -> Self {
        match open_private_dir(&dir) {
            Ok(mac_key) => CompileCache {
                dir: Some(PrivateDir { path: dir, mac_key }),
            },
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
    pub fn key(engine: &wasmtime::Engine, component: &[u8]) -> CacheKey {
        Self::key_of_digest(engine, &Sha256::digest(component).into())
    }

    /// The cache key of a component whose sha256 is `digest` (known ahead, as for the skills
    /// built into the binary).
    pub fn key_of_digest(engine: &wasmtime::Engine, digest: &[u8; 32]) -> CacheKey {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.0.update(digest);
        hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
        hasher.0.update(FORMAT.as_bytes());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CacheKey {
            name: hex(&hasher.0.finalize()),
            component_sha256: *digest,
        }
    }

    /// What identifies `engine` (and this host) in the file index.
    pub fn engine_tag(engine: &wasmtime::Engine) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
        hasher.0.update(FORMAT.as_bytes());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hex(&hasher.0.finalize()[..8])
    }

    /// The file index: component paths with their size, mtime and cache key, so that a command
    /// finds a known component's entries without reading and hashing it. A file whose size or
    /// mtime changed is read and hashed again. (Rewriting a component while keeping both would
    /// keep its previous, already vetted build in use until either changes.) An index that fails
    /// its check is ignored: every file is then read once and the index rebuilt.
    pub fn load_index(&self, engine_tag: &str) -> FileIndex {
        let entries = self
            .dir
            .as_ref()
            .and_then(|dir| {
                let name = format!("index-{engine_tag}");
                let path = dir.path.join(format!("{name}.json"));
                let bytes = match read_entry(&path) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => return None,
                    Err(why) => {
                        tracing::warn!("{} {why}; rebuilding it", path.display());
                        let _ = fs::remove_file(&path);
                        return None;
                    }
                };
                let body = unseal(&dir.mac_key, Kind::Index, &name, &[0; 32], &bytes);
                match body.and_then(|body| serde_json::from_str(&body).ok()) {
                    Some(entries) => Some(entries),
                    None => {
                        tracing::warn!(
                            "{} failed its integrity check; rebuilding it",
                            path.display()
                        );
                        let _ = fs::remove_file(&path);
                        None
                    }
                }
            })
            .unwrap_or_default();
        FileIndex {
            entries,
            changed: false,
        }
    }

    /// Writes the index back if it changed.
    pub fn store_index(&self, engine_tag: &str, index: &FileIndex) {
        if !index.changed {
            return;
        }
        let Some(dir) = &self.dir else {
            return;
        };
        let name = format!("index-{engine_tag}");
        if let Ok(body) = serde_json::to_string(&index.entries)
            && let Some(sealed) = seal(&dir.mac_key, Kind::Index, &name, &[0; 32], body)
        {
            write_atomically(&dir.path.join(format!("{name}.json")), &sealed);
        }
    }

    fn path(&self, key: &CacheKey, ext: &str) -> Option<(&PrivateDir, PathBuf)> {
        self.dir
            .as_ref()
            .map(|d| (d, d.path.join(format!("{}.{ext}", key.name))))
    }

    /// The verified artifact bytes stored under `key`: made by this cache (MAC under its key)
    /// from the component `key` was derived from. The bytes returned are the bytes verified.
    pub fn artifact(&self, key: &CacheKey) -> Lookup<Artifact> {
        let Some((dir, path)) = self.path(key, "cwasm") else {
            return Lookup::Miss;
        };
        let bytes = match read_entry(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Lookup::Miss,
            Err(why) => return corrupt(&path, &why),
        };
        if !open_artifact(&dir.mac_key, key, &bytes) {
            return corrupt(&path, "failed its integrity check");
        }
        Lookup::Hit(Artifact { framed: bytes })
    }

    /// Stores an artifact under `key` (atomically: a reader never sees half a file).
    pub fn store_artifact(&self, key: &CacheKey, artifact: &[u8]) {
        if let Some((dir, path)) = self.path(key, "cwasm")
            && let Some(tag) = mac(
                &dir.mac_key,
                Kind::Artifact,
                &key.name,
                &key.component_sha256,
                artifact,
            )
        {
            let mut framed = Vec::with_capacity(ARTIFACT_HEADER + artifact.len());
            framed.extend_from_slice(ARTIFACT_MAGIC);
            framed.extend_from_slice(&key.component_sha256);
            framed.extend_from_slice(&tag);
            framed.extend_from_slice(artifact);
            write_atomically(&path, &framed);
        }
    }

    /// The verified manifest stored under `key`, if it parses as `T`.
    pub fn manifest<T: serde::de::DeserializeOwned>(&self, key: &CacheKey) -> Lookup<T> {
        let Some((dir, path)) = self.path(key, "json") else {
            return Lookup::Miss;
        };
        let body = match self.sealed(dir, &path, Kind::Manifest, key) {
            Lookup::Hit(body) => body,
            Lookup::Miss => return Lookup::Miss,
            Lookup::Corrupt(why) => return Lookup::Corrupt(why),
        };
        match serde_json::from_str(&body) {
            Ok(value) => Lookup::Hit(value),
            Err(e) => corrupt(&path, &format!("is not a valid manifest: {e}")),
        }
    }

    /// Stores a manifest under `key`.
    pub fn store_manifest<T: serde::Serialize>(&self, key: &CacheKey, manifest: &T) {
        if let Ok(body) = serde_json::to_string(manifest) {
            self.store_sealed(key, "json", Kind::Manifest, body);
        }
    }

    /// Why the component of `key` was refused, if an earlier command recorded it: the same
    /// component is then reported without being compiled or instantiated again.
    pub fn refusal(&self, key: &CacheKey) -> Lookup<String> {
        match self.path(key, "refused") {
            Some((dir, path)) => self.sealed(dir, &path, Kind::Refusal, key),
            None => Lookup::Miss,
        }
    }

    /// Records why the component of `key` was refused (compiling, vetting, linking,
    /// `describe()` or its manifest failed), and drops its compiled artifact, which nothing will
    /// load (a refused component of many megabytes would otherwise leave its native code behind).
    pub fn store_refusal(&self, key: &CacheKey, reason: &str) {
        self.store_sealed(key, "refused", Kind::Refusal, reason.to_string());
        if let Some((_, artifact)) = self.path(key, "cwasm") {
            let _ = fs::remove_file(artifact);
        }
    }

    /// The verified body of the sealed entry at `path`.
    fn sealed(&self, dir: &PrivateDir, path: &Path, kind: Kind, key: &CacheKey) -> Lookup<String> {
        let bytes = match read_entry(path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Lookup::Miss,
            Err(why) => return corrupt(path, &why),
        };
        match unseal(&dir.mac_key, kind, &key.name, &key.component_sha256, &bytes) {
            Some(body) => Lookup::Hit(body),
            None => corrupt(path, "failed its integrity check"),
        }
    }

    fn store_sealed(&self, key: &CacheKey, ext: &str, kind: Kind, body: String) {
        if let Some((dir, path)) = self.path(key, ext)
            && let Some(sealed) = seal(&dir.mac_key, kind, &key.name, &key.component_sha256, body)
        {
            write_atomically(&path, &sealed);
        }
    }
}

/// Removes a cache entry that failed a check, and says why.
fn corrupt<T>(path: &Path, why: &str) -> Lookup<T> {
    let _ = fs::remove_file(path);
    Lookup::Corrupt(format!("{} {why}", path.display()))
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
    sha256: String,
}

fn file_stamp(meta: &fs::Metadata) -> Option<(u64, i64, u32)> {
    let modified = meta.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((meta.len(), since.as_secs() as i64, since.subsec_nanos()))
}

impl FileIndex {
    /// The cache key recorded for `path`, if its size and mtime are unchanged.
    pub fn key_for(&self, path: &Path, meta: &fs::Metadata) -> Option<CacheKey> {
        let (len, mtime_s, mtime_ns) = file_stamp(meta)?;
        let entry = self.entries.get(&path.display().to_string())?;
        if entry.len != len || entry.mtime_s != mtime_s || entry.mtime_ns != mtime_ns {
            return None;
        }
        let component_sha256 = unhex(&entry.sha256)?.try_into().ok()?;
        Some(CacheKey {
            name: entry.key.clone(),
            component_sha256,
        })
    }

    /// Records `key` for `path` as it is now.
    pub fn record(&mut self, path: &Path, meta: &fs::Metadata, key: &CacheKey) {
        if let Some((len, mtime_s, mtime_ns)) = file_stamp(meta) {
            let entry = IndexEntry {
                len,
                mtime_s,
                mtime_ns,
                key: key.name.clone(),
                sha256: hex(&key.component_sha256),
            };
            let name = path.display().to_string();
            if self.entries.get(&name) != Some(&entry) {
                self.entries.insert(name, entry);
                self.changed = true;
            }
        }
    }
}

/// The MAC of an entry: HMAC-SHA256 under the cache's key over a domain label, the entry's
/// kind, its (length-prefixed) name, the component's sha256, and its bytes.
fn mac(
    mac_key: &[u8; MAC_KEY_LEN],
    kind: Kind,
    name: &str,
    component_sha256: &[u8; 32],
    body: &[u8],
) -> Option<[u8; MAC_LEN]> {
    Some(
        mac_state(mac_key, kind, name, component_sha256, body)?
            .finalize()
            .into_bytes()
            .into(),
    )
}

fn mac_state(
    mac_key: &[u8; MAC_KEY_LEN],
    kind: Kind,
    name: &str,
    component_sha256: &[u8; 32],
    body: &[u8],
) -> Option<HmacSha256> {
    // HMAC takes a key of any length; the error case cannot happen, and would mean "no MAC".
    let mut state = <HmacSha256 as Mac>::new_from_slice(mac_key).ok()?;
    state.update(b"skillhost compile cache\0");
    state.update(kind.label());
    state.update(b"\0");
    state.update(&(name.len() as u64).to_be_bytes());
    state.update(name.as_bytes());
    state.update(component_sha256);
    state.update(body);
    Some(state)
}

/// Whether `tag` is the MAC of the entry (compared in constant time).
fn mac_verifies(
    mac_key: &[u8; MAC_KEY_LEN],
    kind: Kind,
    name: &str,
    component_sha256: &[u8; 32],
    body: &[u8],
    tag: &[u8],
) -> bool {
    mac_state(mac_key, kind, name, component_sha256, body)
        .is_some_and(|state| state.verify_slice(tag).is_ok())
}

/// Whether `bytes` is an artifact file made by this cache for `key`.
fn open_artifact(mac_key: &[u8; MAC_KEY_LEN], key: &CacheKey, bytes: &[u8]) -> bool {
    if bytes.len() < ARTIFACT_HEADER || bytes[..ARTIFACT_MAGIC.len()] != *ARTIFACT_MAGIC {
        return false;
    }
    let (header, artifact) = bytes.split_at(ARTIFACT_HEADER);
    let digest = &header[ARTIFACT_MAGIC.len()..ARTIFACT_MAGIC.len() + 32];
    let tag = &header[ARTIFACT_MAGIC.len() + 32..];
    digest == key.component_sha256
        && mac_verifies(
            mac_key,
            Kind::Artifact,
            &key.name,
            &key.component_sha256,
            artifact,
            tag,
        )
}

/// A JSON entry: its body (a manifest, a refusal's reason, the index) as text, with the
/// component's sha256 and the MAC over both.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    component_sha256: String,
    mac: String,
    body: String,
}

fn seal(
    mac_key: &[u8; MAC_KEY_LEN],
    kind: Kind,
    name: &str,
    component_sha256: &[u8; 32],
    body: String,
) -> Option<Vec<u8>> {
    let tag = mac(mac_key, kind, name, component_sha256, body.as_bytes())?;
    serde_json::to_vec(&Sealed {
        component_sha256: hex(component_sha256),
        mac: hex(&tag),
        body,
    })
    .ok()
}

/// The body of a sealed entry, if it was sealed by this cache for (`kind`, `name`, component).
fn unseal(
    mac_key: &[u8; MAC_KEY_LEN],
    kind: Kind,
    name: &str,
    component_sha256: &[u8; 32],
    bytes: &[u8],
) -> Option<String> {
    let sealed: Sealed = serde_json::from_slice(bytes).ok()?;
    let tag = unhex(&sealed.mac)?;
    (sealed.component_sha256 == hex(component_sha256)
        && mac_verifies(
            mac_key,
            kind,
            name,
            component_sha256,
            sealed.body.as_bytes(),
            &tag,
        ))
    .then_some(sealed.body)
}

/// Writes `bytes` to a private temporary file beside `path` and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = write_new_private(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        tracing::warn!("could not write cache entry {}: {e}", path.display());
    }
}

/// Creates `path` (replacing a leftover of a crashed run, never following a symlink), readable
/// and writable by this user only, and writes `bytes`.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = fs::remove_file(path);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// The bytes of the cache file at `path`, after checking (on the open file) that it is a regular
/// file of this user that no one else may write. `None`: there is no such file.
fn read_entry(path: &Path) -> Result<Option<Vec<u8>>, String> {
    Ok(read_checked(path)?.map(|(bytes, _)| bytes))
}

/// [`read_entry`], with the metadata of the file that was read.
fn read_checked(path: &Path) -> Result<Option<(Vec<u8>, fs::Metadata)>, String> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("is a symbolic link, which a cache entry never is".to_string());
        }
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot be read ({e})"))?;
    if !meta.is_file() {
        return Err("is not a regular file".to_string());
    }
    if let Some(why) = foreign(&meta) {
        return Err(why);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({e})"))?;
    Ok(Some((bytes, meta)))
}

/// Why a file or folder with `meta` cannot be trusted: another user owns it, or other users may
/// write to it. `None` when it is private enough.
fn foreign(meta: &fs::Metadata) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = effective_uid();
        if meta.uid() != me {
            return Some(format!(
                "is owned by uid {}, not by this user (uid {me})",
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Some(format!(
                "is writable by other users (mode {:o})",
                meta.mode() & 0o7777
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    None
}

/// The user skillhost runs as (what its files are created as).
#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` private if missing, checks that it is this user's and writable by nobody else,
/// and returns its MAC key (made on first use).
fn open_private_dir(dir: &Path) -> Result<[u8; MAC_KEY_LEN], String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create it: {e}"))?;
        let meta = fs::metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
        if !meta.is_dir() {
            return Err("it is not a folder".to_string());
        }
        let me = effective_uid();
        let quoted = shell_quote(dir);
        if meta.uid() != me {
            return Err(format!(
                "it is owned by uid {}, not by this user (uid {me}), and a compile cache holds \
                 native code that skillhost runs; make it yours and private with \
                 `chown {me} {quoted} && chmod 700 {quoted}`, or use a folder of your own",
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "it is writable by other users (mode {:o}), and a compile cache holds native \
                 code that skillhost runs; make it private with `chmod 700 {quoted}`",
                meta.mode() & 0o7777
            ));
        }
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir).map_err(|e| format!("cannot create it: {e}"))?;
    load_or_create_key(dir)
}

/// The MAC key in `dir`: read, or made from 32 random bytes when missing. A key file of the
/// wrong size, or that other users may read, is replaced (its entries are then rebuilt); one
/// that another user owns, or a symlink, refuses the whole folder.
fn load_or_create_key(dir: &Path) -> Result<[u8; MAC_KEY_LEN], String> {
    let path = dir.join(KEY_FILE);
    match read_key(&path)? {
        KeyFile::Good(key) => Ok(key),
        KeyFile::Missing => create_key(&path, false),
        KeyFile::Unusable(why) => {
            tracing::warn!(
                "compile cache key {} {why}; replacing it (every entry will be rebuilt)",
                path.display()
            );
            create_key(&path, true)
        }
    }
}

enum KeyFile {
    Good([u8; MAC_KEY_LEN]),
    Missing,
    Unusable(String),
}

fn read_key(path: &Path) -> Result<KeyFile, String> {
    let (bytes, meta) = match read_checked(path) {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(KeyFile::Missing),
        Err(why) => return Err(format!("its key file {} {why}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // A key that others could read may have been read.
        if meta.mode() & 0o077 != 0 {
            return Ok(KeyFile::Unusable(format!(
                "is readable by other users (mode {:o})",
                meta.mode() & 0o7777
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    match <[u8; MAC_KEY_LEN]>::try_from(bytes.as_slice()) {
        Ok(key) => Ok(KeyFile::Good(key)),
        Err(_) => Ok(KeyFile::Unusable(format!(
            "holds {} bytes, not {MAC_KEY_LEN}",
            bytes.len()
        ))),
    }
}

/// Makes a fresh key at `path`. Two processes making the first key at once agree on one: the key
/// is written whole to a temporary file and hard-linked into place, which fails if another
/// process was first (its key is then used).
fn create_key(path: &Path, replace: bool) -> Result<[u8; MAC_KEY_LEN], String> {
    let mut key = [0u8; MAC_KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| format!("cannot draw random bytes for its key: {e}"))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    write_new_private(&tmp, &key).map_err(|e| format!("cannot write its key: {e}"))?;
    let linked = if replace {
        Err(std::io::Error::other("replacing"))
    } else {
        fs::hard_link(&tmp, path)
    };
    let result = match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_key(path)? {
            KeyFile::Good(theirs) => Ok(theirs),
            _ => Err(format!("its key file {} is unusable", path.display())),
        },
        // Replacing, or a file system without hard links.
        Err(_) => fs::rename(&tmp, path)
            .map(|()| key)
            .map_err(|e| format!("cannot write its key: {e}")),
    };
    let _ = fs::remove_file(&tmp);
    result
}

/// `path` as a shell word, for the commands of a warning.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&b))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of hex `text` (digits only: no sign, no prefix).
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh folder under the temporary folder, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "skillhost-cache-test-{label}-{}-{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            Scratch(dir)
        }

        fn cache(&self) -> CompileCache {
            let cache = CompileCache::open(self.0.clone());
            assert!(cache.dir.is_some(), "{} refused", self.0.display());
            cache
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn key(component: &[u8]) -> CacheKey {
        let digest: [u8; 32] = Sha256::digest(component).into();
        CacheKey {
            name: hex(&Sha256::digest(digest)),
            component_sha256: digest,
        }
    }

    fn hit<T: fmt::Debug>(lookup: Lookup<T>) -> T {
        match lookup {
            Lookup::Hit(value) => value,
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    fn corrupt<T: fmt::Debug>(lookup: Lookup<T>) -> String {
        match lookup {
            Lookup::Corrupt(why) => why,
            other => panic!("expected a failed check, got {other:?}"),
        }
    }

    fn is_root() -> bool {
        effective_uid() == 0
    }

    #[test]
    fn a_stored_artifact_verifies_and_a_flipped_byte_fails_and_is_removed() {
        let dir = Scratch::new("flip");
        let cache = dir.cache();
        let a = key(b"component a");
        cache.store_artifact(&a, b"compiled code of a");
        assert_eq!(hit(cache.artifact(&a)).as_ref(), b"compiled code of a");

        let path = dir.0.join(format!("{a}.cwasm"));
        for at in [0, 9, ARTIFACT_HEADER - 1, ARTIFACT_HEADER + 3] {
            cache.store_artifact(&a, b"compiled code of a");
            let mut bytes = fs::read(&path).unwrap();
            bytes[at] ^= 1;
            fs::write(&path, &bytes).unwrap();
            assert_eq!(
                corrupt(cache.artifact(&a)),
                format!("{} failed its integrity check", path.display()),
                "flipped byte {at}"
            );
            assert!(!path.exists(), "a failed entry is removed");
            assert!(matches!(cache.artifact(&a), Lookup::Miss));
        }
        // Truncated to less than its header.
        cache.store_artifact(&a, b"compiled code of a");
        fs::write(&path, &fs::read(&path).unwrap()[..20]).unwrap();
        assert!(matches!(cache.artifact(&a), Lookup::Corrupt(_)));
    }

    #[test]
    fn an_artifact_copied_over_another_components_artifact_fails() {
        let dir = Scratch::new("swap");
        let cache = dir.cache();
        let (a, b) = (key(b"component a"), key(b"component b"));
        cache.store_artifact(&a, b"code of a");
        cache.store_artifact(&b, b"code of b");
        let path_a = dir.0.join(format!("{a}.cwasm"));
        let path_b = dir.0.join(format!("{b}.cwasm"));
        fs::copy(&path_a, &path_b).unwrap();
        assert_eq!(
            corrupt(cache.artifact(&b)),
            format!("{} failed its integrity check", path_b.display())
        );
        // Even with the component digest in its header rewritten to b's, the MAC (over a's key)
        // does not verify.
        let mut forged = fs::read(&path_a).unwrap();
        forged[8..40].copy_from_slice(&b.component_sha256);
        fs::write(&path_b, &forged).unwrap();
        assert!(matches!(cache.artifact(&b), Lookup::Corrupt(_)));
        assert_eq!(hit(cache.artifact(&a)).as_ref(), b"code of a");
    }

    #[test]
    fn an_artifact_made_under_another_caches_key_fails() {
        let (mine, theirs) = (Scratch::new("mine"), Scratch::new("theirs"));
        let (my_cache, their_cache) = (mine.cache(), theirs.cache());
        let a = key(b"component a");
        their_cache.store_artifact(&a, b"their code");
        fs::copy(
            theirs.0.join(format!("{a}.cwasm")),
            mine.0.join(format!("{a}.cwasm")),
        )
        .unwrap();
        assert_eq!(
            corrupt(my_cache.artifact(&a)),
            format!("{}/{a}.cwasm failed its integrity check", mine.0.display())
        );
    }

    #[test]
    fn a_manifest_and_a_refusal_are_authenticated_and_bound_to_their_key() {
        let dir = Scratch::new("sealed");
        let cache = dir.cache();
        let (a, b) = (key(b"component a"), key(b"component b"));
        cache.store_manifest(&a, &serde_json::json!({"id": "echo"}));
        cache.store_refusal(&b, "describe() failed: wasm trap: interrupt");
        assert_eq!(
            hit(cache.manifest::<serde_json::Value>(&a)),
            serde_json::json!({"id": "echo"})
        );
        assert_eq!(
            hit(cache.refusal(&b)),
            "describe() failed: wasm trap: interrupt"
        );

        // A manifest whose id was rewritten, MAC kept.
        let manifest = dir.0.join(format!("{a}.json"));
        let text = fs::read_to_string(&manifest).unwrap();
        fs::write(&manifest, text.replace("echo", "evil")).unwrap();
        assert_eq!(
            corrupt(cache.manifest::<serde_json::Value>(&a)),
            format!("{} failed its integrity check", manifest.display())
        );

        // A refusal moved to another component's name, so as to hide that component.
        let refused_b = dir.0.join(format!("{b}.refused"));
        let refused_a = dir.0.join(format!("{a}.refused"));
        fs::copy(&refused_b, &refused_a).unwrap();
        assert!(matches!(cache.refusal(&a), Lookup::Corrupt(_)));

        // A manifest planted as a refusal (same key): the kind is part of the MAC.
        cache.store_manifest(&a, &serde_json::json!({"id": "echo"}));
        fs::copy(&manifest, &refused_a).unwrap();
        assert!(matches!(cache.refusal(&a), Lookup::Corrupt(_)));

        // Plain JSON without a MAC, as an older cache wrote it.
        fs::write(&manifest, br#"{"id": "echo"}"#).unwrap();
        assert!(matches!(
            cache.manifest::<serde_json::Value>(&a),
            Lookup::Corrupt(_)
        ));
    }

    #[test]
    fn the_file_index_is_authenticated() {
        let dir = Scratch::new("index");
        let cache = dir.cache();
        let component = dir.0.join("echo.wasm");
        fs::write(&component, b"component").unwrap();
        let meta = fs::metadata(&component).unwrap();
        let mut index = cache.load_index("tag");
        index.record(&component, &meta, &key(b"component"));
        cache.store_index("tag", &index);
        assert_eq!(
            cache.load_index("tag").key_for(&component, &meta),
            Some(key(b"component"))
        );

        // Point the file at another component's key.
        let path = dir.0.join("index-tag.json");
        let text = fs::read_to_string(&path).unwrap();
        let other = key(b"other");
        fs::write(&path, text.replace(&key(b"component").name, &other.name)).unwrap();
        assert_eq!(cache.load_index("tag").key_for(&component, &meta), None);
    }

    #[test]
    fn the_key_is_made_once_private_and_reused() {
        let dir = Scratch::new("key");
        let first = dir.cache();
        let path = dir.0.join(KEY_FILE);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(meta.mode() & 0o777, 0o600);
            assert_eq!(fs::metadata(&dir.0).unwrap().mode() & 0o777, 0o700);
        }
        let second = dir.cache();
        assert_eq!(
            first.dir.as_ref().map(|d| d.mac_key),
            second.dir.as_ref().map(|d| d.mac_key)
        );
        // What one process stored, the next one reads.
        let a = key(b"component a");
        first.store_artifact(&a, b"code");
        assert_eq!(hit(second.artifact(&a)).as_ref(), b"code");
        assert_ne!(first.dir.map(|d| d.mac_key), Some([0; 32]));
    }

    #[test]
    fn a_key_of_the_wrong_size_or_readable_by_others_is_replaced() {
        let dir = Scratch::new("bad-key");
        let a = key(b"component a");
        dir.cache().store_artifact(&a, b"code");
        fs::write(dir.0.join(KEY_FILE), b"short").unwrap();
        let cache = dir.cache();
        assert_eq!(fs::metadata(dir.0.join(KEY_FILE)).unwrap().len(), 32);
        // Entries made under the old key no longer verify.
        assert!(matches!(cache.artifact(&a), Lookup::Corrupt(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let before = cache.dir.as_ref().map(|d| d.mac_key);
            fs::set_permissions(dir.0.join(KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
            let after = dir.cache().dir.map(|d| d.mac_key);
            assert_ne!(before, after);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_cache_folder_writable_by_others_is_refused_saying_how_to_fix_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::new("writable");
        fs::create_dir_all(&dir.0).unwrap();
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            open_private_dir(&dir.0).unwrap_err(),
            format!(
                "it is writable by other users (mode 777), and a compile cache holds native code \
                 that skillhost runs; make it private with `chmod 700 {}`",
                dir.0.display()
            )
        );
        assert!(CompileCache::open(dir.0.clone()).dir.is_none());
        assert!(!dir.0.join(KEY_FILE).exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_cache_folder_owned_by_another_user_is_refused_saying_how_to_fix_it() {
        if !is_root() {
            eprintln!("skipped: only root can give a folder to another user");
            return;
        }
        let dir = Scratch::new("foreign");
        fs::create_dir_all(&dir.0).unwrap();
        std::os::unix::fs::chown(&dir.0, Some(65534), Some(65534)).unwrap();
        let d = dir.0.display();
        assert_eq!(
            open_private_dir(&dir.0).unwrap_err(),
            format!(
                "it is owned by uid 65534, not by this user (uid 0), and a compile cache holds \
                 native code that skillhost runs; make it yours and private with \
                 `chown 0 {d} && chmod 700 {d}`, or use a folder of your own"
            )
        );
        assert!(CompileCache::open(dir.0.clone()).dir.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn an_entry_owned_by_another_user_or_writable_by_others_is_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::new("entry");
        let cache = dir.cache();
        let a = key(b"component a");
        let path = dir.0.join(format!("{a}.cwasm"));

        cache.store_artifact(&a, b"code");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            corrupt(cache.artifact(&a)),
            format!("{} is writable by other users (mode 666)", path.display())
        );

        cache.store_artifact(&a, b"code");
        let target = dir.0.join("elsewhere");
        fs::rename(&path, &target).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert_eq!(
            corrupt(cache.artifact(&a)),
            format!(
                "{} is a symbolic link, which a cache entry never is",
                path.display()
            )
        );

        if is_root() {
            cache.store_artifact(&a, b"code");
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
            assert_eq!(
                corrupt(cache.artifact(&a)),
                format!(
                    "{} is owned by uid 65534, not by this user (uid 0)",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn a_refusal_drops_the_components_artifact() {
        let dir = Scratch::new("refused");
        let cache = dir.cache();
        let a = key(b"component a");
        cache.store_artifact(&a, b"code");
        cache.store_refusal(&a, "describe() failed: wasm trap: interrupt");
        assert!(matches!(cache.artifact(&a), Lookup::Miss));
        assert_eq!(
            hit(cache.refusal(&a)),
            "describe() failed: wasm trap: interrupt"
        );
    }

    #[test]
    fn a_disabled_cache_remembers_nothing() {
        let cache = CompileCache::disabled();
        let a = key(b"component a");
        cache.store_artifact(&a, b"code");
        cache.store_refusal(&a, "no");
        assert!(matches!(cache.artifact(&a), Lookup::Miss));
        assert!(matches!(cache.refusal(&a), Lookup::Miss));
    }

    #[test]
    fn paths_in_the_fix_it_commands_are_shell_quoted() {
        assert_eq!(
            shell_quote(Path::new("/root/.cache/skillhost")),
            "/root/.cache/skillhost"
        );
        assert_eq!(shell_quote(Path::new("/tmp/my cache")), "'/tmp/my cache'");
        assert_eq!(shell_quote(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }
}

//! Who may call the service: the `[callers.NAME]` of the config, their API keys and tenants.
//!
//! Threat: an API key is a credential. Keys are read from where the config points
//! (`{ env = "VAR" }` or `{ file = "PATH" }`, never inline) and only their sha256 is kept; a
//! presented key is hashed and compared with every caller's digest in constant time, so neither
//! the comparison's timing nor an early exit tells how much of a key was right, nor which caller
//! it was close to. Keys shorter than [`MIN_KEY_BYTES`] are refused at start (they could be
//! guessed). No key, digest or presented value is ever logged or answered. A key kept in a file
//! is re-read when the file changes, so a key is rotated without a restart; a key file that is
//! removed, emptied or cut short while the server runs disables its caller (revoking a key by
//! deleting it must not leave the old key working).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use skillhost_contract::error::{ExitCode, Failure, Reason};
use skillhost_upstream::connections::{Caller, SecretSource};
use subtle::ConstantTimeEq;

/// The shortest API key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// A caller as the server knows it.
#[derive(Debug, Clone)]
pub struct KnownCaller {
    /// Its name (for audit records and metrics).
    pub name: String,
    /// The tenants whose connections it may bind.
    pub tenants: BTreeSet<String>,
    /// The key's sha256; `None` while the caller's key file holds no usable key (refused).
    digest: Option<[u8; 32]>,
    source: SecretSource,
    stamp: Option<FileStamp>,
}

/// When a key file was last seen changed: its length and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl KnownCaller {
    /// `caller` of the config with its key's `digest` (`None`: disabled) and the `stamp` its key
    /// file had when it was read.
    fn new(caller: &Caller, digest: Option<[u8; 32]>, stamp: Option<FileStamp>) -> Self {
        KnownCaller {
            name: caller.name.clone(),
            tenants: caller.tenants.iter().cloned().collect(),
            digest,
            source: caller.key.clone(),
            stamp,
        }
    }

    /// Whether this caller may bind connections of `tenant`.
    pub fn may_use(&self, tenant: &str) -> bool {
        self.tenants.contains(tenant)
    }
}

/// Every caller of the config, keys read.
#[derive(Debug, Clone, Default)]
pub struct Callers {
    callers: Vec<KnownCaller>,
}

impl Callers {
    /// Reads every caller's key. A missing, empty or short key is an error naming the caller
    /// and where the key was looked for.
    pub fn load(callers: &BTreeMap<String, Caller>) -> Result<Self, Failure> {
        let callers = callers
            .values()
            .map(|caller| {
                let (digest, stamp) = read_key(&caller.name, &caller.key)?;
                Ok(KnownCaller::new(caller, Some(digest), stamp))
            })
            .collect::<Result<_, Failure>>()?;
        Ok(Callers { callers })
    }

    /// Like [`Self::load`], for a reload of a running server: a caller whose key cannot be read
    /// is disabled (and reported) instead of failing the reload, which would keep every
    /// caller's previous key, that one's included.
    pub fn load_for_reload(callers: &BTreeMap<String, Caller>) -> Self {
        let callers = callers
            .values()
            .map(|caller| match read_key(&caller.name, &caller.key) {
                Ok((digest, stamp)) => KnownCaller::new(caller, Some(digest), stamp),
                Err(failure) => {
                    tracing::warn!(
                        "{}; the caller is refused until it has a key",
                        failure.to_safe_string()
                    );
                    KnownCaller::new(caller, None, stamp_of_source(&caller.key))
                }
            })
            .collect();
        Callers { callers }
    }

    /// True when no caller is configured.
    pub fn is_empty(&self) -> bool {
        self.callers.is_empty()
    }

    /// The caller whose key is `presented`, comparing against every caller in constant time.
    pub fn authenticate(&self, presented: &[u8]) -> Option<&KnownCaller> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for caller in &self.callers {
            // No early exit: every caller is compared whatever matched before. A disabled
            // caller is compared too (against zeros, which no key hashes to) and never found.
            let known = caller.digest.unwrap_or([0; 32]);
            if bool::from(known.ct_eq(&digest)) && caller.digest.is_some() {
                found = Some(caller);
            }
        }
        found
    }

    /// Re-reads the keys kept in files that changed since they were read. A file that no longer
    /// holds a usable key (removed, empty, too short) disables its caller until it does again
    /// (reported). Returns the names of the callers whose key changed or was disabled.
    pub fn refresh(&mut self) -> Vec<String> {
        let mut changed = Vec::new();
        for caller in &mut self.callers {
            let SecretSource::File(path) = &caller.source else {
                continue;
            };
            let stamp = stamp_of(path);
            if stamp == caller.stamp {
                continue;
            }
            match read_key(&caller.name, &caller.source) {
                Ok((digest, stamp)) => {
                    caller.stamp = stamp;
                    let same = caller
                        .digest
                        .is_some_and(|known| bool::from(digest.ct_eq(&known)));
                    if !same {
                        caller.digest = Some(digest);
                        changed.push(caller.name.clone());
                    }
                }
                Err(failure) => {
                    // Remembered, so the same broken file is reported once.
                    caller.stamp = stamp;
                    tracing::warn!(
                        "{}; the caller is refused until its key file holds a key again",
                        failure.to_safe_string()
                    );
                    if caller.digest.take().is_some() {
                        changed.push(caller.name.clone());
                    }
                }
            }
        }
        changed
    }
}

fn stamp_of(path: &PathBuf) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// The stamp of the file a key is kept in (`None` for a key in the environment).
fn stamp_of_source(source: &SecretSource) -> Option<FileStamp> {
    match source {
        SecretSource::File(path) => stamp_of(path),
        SecretSource::Env(_) => None,
    }
}

/// The digest of caller `name`'s key, and the stamp of its file if it is kept in one.
fn read_key(name: &str, source: &SecretSource) -> Result<([u8; 32], Option<FileStamp>), Failure> {
    let stamp = stamp_of_source(source);
    let key = source
        .read_as(&format!("caller `{name}`"), "API key")
        .map_err(|f| Failure {
            code: ExitCode::Usage,
            reason: Reason::InvalidInput,
            ..f
        })?;
    if key.expose().len() < MIN_KEY_BYTES {
        return Err(Failure::usage(format!(
            "caller `{name}`: the API key in {} is shorter than {MIN_KEY_BYTES} bytes",
            source.place()
        ))
        .with_hint("generate one with `openssl rand -hex 32`"));
    }
    Ok((Sha256::digest(key.expose().as_bytes()).into(), stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: &str, path: &std::path::Path, tenants: &[&str]) -> Caller {
        Caller {
            name: name.to_string(),
            key: SecretSource::File(path.to_path_buf()),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("skillhost-callers-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_right_key_finds_its_caller_and_a_wrong_one_none() {
        let dir = scratch("auth");
        std::fs::write(dir.join("soc"), "0123456789abcdef-soc\n").unwrap();
        std::fs::write(dir.join("mssp"), "0123456789abcdef-mssp").unwrap();
        let config = BTreeMap::from([
            (
                "soc".to_string(),
                caller("soc", &dir.join("soc"), &["acme"]),
            ),
            (
                "mssp".to_string(),
                caller("mssp", &dir.join("mssp"), &["globex"]),
            ),
        ]);
        let callers = Callers::load(&config).unwrap();
        let found = callers.authenticate(b"0123456789abcdef-soc").unwrap();
        assert_eq!(found.name, "soc");
        assert!(found.may_use("acme"));
        assert!(!found.may_use("globex"));
        assert!(callers.authenticate(b"0123456789abcdef-so").is_none());
        assert!(callers.authenticate(b"").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_short_key_is_refused_at_load_without_showing_it() {
        let dir = scratch("short");
        std::fs::write(dir.join("soc"), "hunter2").unwrap();
        let config = BTreeMap::from([(
            "soc".to_string(),
            caller("soc", &dir.join("soc"), &["acme"]),
        )]);
        let err = Callers::load(&config).unwrap_err();
        assert!(
            err.message
                .starts_with("caller `soc`: the API key in the file "),
            "{}",
            err.message
        );
        assert!(err.message.ends_with("is shorter than 16 bytes"));
        assert!(!err.to_string().contains("hunter2"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_rotated_key_file_replaces_the_key() {
        let dir = scratch("rotate");
        let path = dir.join("soc");
        std::fs::write(&path, "first-key-0123456789").unwrap();
        let config = BTreeMap::from([("soc".to_string(), caller("soc", &path, &["acme"]))]);
        let mut callers = Callers::load(&config).unwrap();
        std::fs::write(&path, "second-key-0123456789-longer").unwrap();
        assert_eq!(callers.refresh(), vec!["soc".to_string()]);
        assert!(callers.authenticate(b"first-key-0123456789").is_none());
        assert_eq!(
            callers
                .authenticate(b"second-key-0123456789-longer")
                .map(|c| c.name.as_str()),
            Some("soc")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_removed_or_emptied_key_file_disables_its_caller_until_it_holds_a_key_again() {
        let dir = scratch("revoke");
        let path = dir.join("soc");
        std::fs::write(&path, "first-key-0123456789").unwrap();
        let config = BTreeMap::from([("soc".to_string(), caller("soc", &path, &["acme"]))]);
        let mut callers = Callers::load(&config).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(callers.refresh(), vec!["soc".to_string()]);
        assert!(callers.authenticate(b"first-key-0123456789").is_none());
        std::fs::write(&path, "").unwrap();
        assert_eq!(callers.refresh(), Vec::<String>::new());
        assert!(callers.authenticate(b"first-key-0123456789").is_none());
        std::fs::write(&path, "second-key-0123456789").unwrap();
        assert_eq!(callers.refresh(), vec!["soc".to_string()]);
        assert_eq!(
            callers
                .authenticate(b"second-key-0123456789")
                .map(|c| c.name.as_str()),
            Some("soc")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_reload_disables_a_caller_whose_key_file_is_gone_and_keeps_the_others() {
        let dir = scratch("reload");
        std::fs::write(dir.join("mssp"), "0123456789abcdef-mssp").unwrap();
        let config = BTreeMap::from([
            (
                "soc".to_string(),
                caller("soc", &dir.join("soc-missing"), &["acme"]),
            ),
            (
                "mssp".to_string(),
                caller("mssp", &dir.join("mssp"), &["globex"]),
            ),
        ]);
        let callers = Callers::load_for_reload(&config);
        let soc = callers.callers.iter().find(|c| c.name == "soc").unwrap();
        assert_eq!(soc.digest, None);
        assert_eq!(
            callers
                .authenticate(b"0123456789abcdef-mssp")
                .map(|c| c.name.as_str()),
            Some("mssp")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

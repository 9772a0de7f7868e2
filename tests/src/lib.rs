//! Test components and helpers for skillhost's end-to-end tests.
//!
//! The build script compiles every crate under `components/` for `wasm32-wasip2`; this library
//! tells tests where each component is and sets up throwaway skills folders.

use std::path::{Path, PathBuf};

/// The folder holding every built test component.
pub fn components_dir() -> PathBuf {
    PathBuf::from(env!("SKILLHOST_TEST_COMPONENTS"))
}

/// The built test component for crate `name` (such as `echo` or `memory-hog`).
pub fn component(name: &str) -> PathBuf {
    components_dir().join(format!("{}.wasm", name.replace('-', "_")))
}

/// A fresh temporary folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/skillhost-test-<label>-<pid>-<n>`.
    pub fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("skillhost-test-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Copies the named test components into this folder; returns the folder.
    pub fn with_components(self, names: &[&str]) -> Self {
        for name in names {
            let from = component(name);
            let to = self.0.join(from.file_name().expect("file name"));
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
        self
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

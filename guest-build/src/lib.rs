//! Compiles guest crates of this workspace to `wasm32-wasip2` components from a build script.
//!
//! `host/build.rs` uses it for the skills and `tests/build.rs` for the test components, so that a
//! plain `cargo build` or `cargo test` produces every component it needs on a machine that has only
//! rustup and cargo. The nested cargo gets its own target folder (a sibling of the outer one) so it
//! never waits on the outer build's lock, and it inherits the outer jobserver so two cargos never
//! run more compilers than the machine has cores.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every guest is built for: it emits a component directly, no adapter step.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// A guest crate to build: its package name and where its sources are (for change tracking).
pub struct Guest {
    /// The cargo package name, such as `list-microsoft-defender-incidents`.
    pub package: String,
    /// The crate's folder.
    pub dir: PathBuf,
}

impl Guest {
    /// The file name cargo gives the component (`-` becomes `_`).
    pub fn artifact_name(&self) -> String {
        format!("{}.wasm", self.package.replace('-', "_"))
    }
}

/// Lists the guest crates under `dir`: every sub-folder whose `Cargo.toml` builds a `cdylib`.
pub fn guests_in(dir: &Path) -> Vec<Guest> {
    let mut guests = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return guests;
    };
    for entry in entries.flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if !text.contains("cdylib") {
            continue;
        }
        if let Some(package) = package_name(&text) {
            guests.push(Guest {
                package,
                dir: entry.path(),
            });
        }
    }
    guests.sort_by(|a, b| a.package.cmp(&b.package));
    guests
}

fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package && let Some(rest) = line.strip_prefix("name") {
            let value = rest
                .trim_start()
                .strip_prefix('=')?
                .trim()
                .trim_matches('"');
            return Some(value.to_string());
        }
    }
    None
}

/// The folder that holds cargo's target folders for this build (the outer `target/`).
///
/// Derived from `OUT_DIR` (`<target>/<profile>/build/<pkg>/out`) so it follows
/// `CARGO_TARGET_DIR` and `--target-dir` without reading them.
pub fn outer_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    out_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// How much the optimizer does for a set of guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimize {
    /// The workspace's release profile: quick to build (the test components).
    Release,
    /// Release with link-time optimization across crates and one codegen unit: the skills that
    /// ship, whose parsing is most of a detection run's CPU (measured 10–15% less CPU end to
    /// end for the detections skill, for about a minute more of build).
    WholeProgram,
}

/// Builds `guests` in release mode for [`GUEST_TARGET`] and copies each component into `dest`.
///
/// Panics (failing the build with the message) when the target cannot be installed or cargo fails:
/// a build script has no better way to report an error.
pub fn build_guests(
    workspace: &Path,
    guests: &[Guest],
    dest: &Path,
    optimize: Optimize,
) -> Vec<PathBuf> {
    for guest in guests {
        println!("cargo:rerun-if-changed={}", guest.dir.display());
    }
    if guests.is_empty() {
        return Vec::new();
    }
    ensure_target_installed();
    let target_dir = outer_target_dir().join("guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--target",
            GUEST_TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    for guest in guests {
        cmd.args(["-p", &guest.package]);
    }
    // Wasm's SIMD instructions (which wasmtime compiles by default): the Defender skills check
    // page text as UTF-8 with them (simdutf8). Every guest build gets the same flags, so that
    // the dependencies they share in one target folder are not rebuilt from one build to the
    // next.
    cmd.arg("--config").arg(format!(
        "target.{GUEST_TARGET}.rustflags=[\"-C\", \"target-feature=+simd128\"]"
    ));
    if optimize == Optimize::WholeProgram {
        cmd.env("CARGO_PROFILE_RELEASE_LTO", "fat")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    }
    // The outer cargo's settings are for the host target; clippy's wrapper is for the outer
    // packages only. None of them may leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the guest components: {e}"));
    assert!(
        status.success(),
        "building the guest components for {GUEST_TARGET} failed (see the cargo output above)"
    );
    std::fs::create_dir_all(dest)
        .unwrap_or_else(|e| panic!("could not create {}: {e}", dest.display()));
    let built = target_dir.join(GUEST_TARGET).join("release");
    guests
        .iter()
        .map(|guest| {
            let from = built.join(guest.artifact_name());
            let to = dest.join(guest.artifact_name());
            std::fs::copy(&from, &to).unwrap_or_else(|e| {
                panic!("could not copy {} to {}: {e}", from.display(), to.display())
            });
            to
        })
        .collect()
}

/// Adds the guest target with rustup when the active toolchain lacks it.
fn ensure_target_installed() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(sysroot) = sysroot
        && Path::new(&sysroot)
            .join("lib/rustlib")
            .join(GUEST_TARGET)
            .exists()
    {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => panic!(
            "the {GUEST_TARGET} target is missing and `rustup target add {GUEST_TARGET}` failed; \
             install it by hand and build again"
        ),
    }
}

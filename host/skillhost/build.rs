//! Builds every skill under `skills/` as a `wasm32-wasip2` component and embeds them in the
//! binary, so that an installed `skillhost` runs its Defender skills from any folder: no path of
//! the build machine decides where the binary looks for skills.
//!
//! The components are also copied to `<target>/skills/` (`SKILLHOST_BUILT_SKILLS`, for the tests
//! and benchmarks, which drop them into folders of their own).

use std::fmt::Write as _;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or_default();
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("skills").display()
    );
    let skills = guest_build::guests_in(&workspace.join("skills"));
    let dest = guest_build::outer_target_dir().join("skills");
    let built = guest_build::build_guests(
        &workspace,
        &skills,
        &dest,
        guest_build::Optimize::WholeProgram,
    );
    println!("cargo:rustc-env=SKILLHOST_BUILT_SKILLS={}", dest.display());

    let mut table = String::from("&[\n");
    for path in &built {
        let bytes = std::fs::read(path)
            .unwrap_or_else(|e| panic!("could not read {}: {e}", path.display()));
        let digest = Sha256::digest(&bytes);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            table,
            "    skillhost_runtime::registry::EmbeddedSkill {{ name: {name:?}, bytes: include_bytes!({:?}), sha256: {:?} }},",
            path.display().to_string(),
            digest.as_slice()
        );
    }
    table.push(']');
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    std::fs::write(&out, table)
        .unwrap_or_else(|e| panic!("could not write {}: {e}", out.display()));
}

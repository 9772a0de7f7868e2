//! Builds every skill under `skills/` as a `wasm32-wasip2` component into `<target>/skills/`, the
//! folder the `skillhost` binary loads by default, so that one `cargo build` yields a working host.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest_dir.parent().map(PathBuf::from).unwrap_or_default();
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("skills").display()
    );
    let skills = guest_build::guests_in(&workspace.join("skills"));
    let dest = guest_build::outer_target_dir().join("skills");
    guest_build::build_guests(&workspace, &skills, &dest);
    println!("cargo:rustc-env=SKILLHOST_BUILT_SKILLS={}", dest.display());
}

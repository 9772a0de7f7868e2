//! Builds every test component under `components/` into `<target>/test-components/`, so that
//! `cargo test` alone produces them.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest_dir.parent().map(PathBuf::from).unwrap_or_default();
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("skills/guest").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("components").display()
    );
    let components = guest_build::guests_in(&manifest_dir.join("components"));
    let dest = guest_build::outer_target_dir().join("test-components");
    guest_build::build_guests(&workspace, &components, &dest);
    println!(
        "cargo:rustc-env=SKILLHOST_TEST_COMPONENTS={}",
        dest.display()
    );
}

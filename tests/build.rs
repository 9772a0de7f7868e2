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
    guest_build::build_guests(
        &workspace,
        &components,
        &dest,
        guest_build::Optimize::Release,
    );
    write_bombs(&dest);
    println!(
        "cargo:rustc-env=SKILLHOST_TEST_COMPONENTS={}",
        dest.display()
    );
}

/// Components no Rust toolchain emits: the `noop` component with many extra core instances
/// appended, each with a memory or a table of its own, or with nothing at all. They exercise the
/// per-invocation budget across memories, tables and instances (their start happens while the
/// component is instantiated, before any export is called).
fn write_bombs(dest: &std::path::Path) {
    let noop = std::fs::read(dest.join("noop.wasm"))
        .unwrap_or_else(|e| panic!("read the noop component: {e}"));
    // 40 memories of 60 MiB (960 pages): 2.4 GiB against a 64 MiB budget.
    let memories = append_instances(&noop, &core_module(Some(960), None), 40);
    // 100 tables of 1M entries: ~800 MiB of table storage.
    let tables = append_instances(&noop, &core_module(None, Some(1_000_000)), 100);
    // 500 instances of an empty module: more than any real toolchain's output.
    let instances = append_instances(&noop, &core_module(None, None), 500);
    for (name, bytes) in [
        ("memory_bomb.wasm", memories),
        ("table_bomb.wasm", tables),
        ("instance_bomb.wasm", instances),
    ] {
        std::fs::write(dest.join(name), bytes).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }
}

fn leb128(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    leb128(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// A core module with at most one table (funcref, `elements` long) and one memory (`pages`).
fn core_module(pages: Option<u64>, elements: Option<u64>) -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    if let Some(elements) = elements {
        let mut payload = vec![1, 0x70, 0x00];
        leb128(elements, &mut payload);
        module.extend(section(4, &payload));
    }
    if let Some(pages) = pages {
        let mut payload = vec![1, 0x00];
        leb128(pages, &mut payload);
        module.extend(section(5, &payload));
    }
    module
}

/// How many core modules the component defines at its top level (its core module index space).
fn core_modules(component: &[u8]) -> u64 {
    let mut at = 8;
    let mut count = 0;
    while at < component.len() {
        let id = component[at];
        at += 1;
        let (mut size, mut shift) = (0u64, 0);
        loop {
            let byte = component[at];
            at += 1;
            size |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if id == 1 {
            count += 1;
        }
        at += size as usize;
    }
    count
}

/// `component` with `module` added and instantiated `count` times (no imports).
fn append_instances(component: &[u8], module: &[u8], count: u64) -> Vec<u8> {
    let index = core_modules(component);
    let mut out = component.to_vec();
    out.extend(section(1, module));
    let mut instances = Vec::new();
    leb128(count, &mut instances);
    for _ in 0..count {
        instances.push(0x00);
        leb128(index, &mut instances);
        instances.push(0x00);
    }
    out.extend(section(2, &instances));
    out
}

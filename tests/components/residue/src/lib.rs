//! Counts the bytes that are not zero in memory it has not written yet (a zero-initialized
//! static of 3 MiB, and 16 pages it grows its memory by), then fills both with `0xAB`. Run twice
//! in one pooled instance slot, the second run must count none: what one invocation (one tenant)
//! wrote never reaches the next. With `{"write_first": true}` it fills before it counts, which
//! shows that the count sees what was written.
use skillhost_guest::{Guest, SkillError, SkillInfo};

/// Larger than the pooling allocator's resident window, so that both ways a slot is reset (pages
/// cleared in place and pages given back) are crossed.
const FIELD_BYTES: usize = 3 << 20;
/// Pages the memory grows by on each run.
const GROWN_PAGES: usize = 16;
const PAGE: usize = 64 << 10;
const MARK: u8 = 0xAB;

static mut FIELD: [u8; FIELD_BYTES] = [0; FIELD_BYTES];

/// Bytes that are not zero in `len` bytes at `start`, read volatile (the compiler may not assume
/// what another invocation left there).
///
/// # Safety
/// `start..start + len` must be inside the linear memory.
unsafe fn not_zero(start: *const u8, len: usize) -> usize {
    (0..len)
        .filter(|&i| unsafe { start.add(i).read_volatile() } != 0)
        .count()
}

/// # Safety
/// As [`not_zero`].
unsafe fn fill(start: *mut u8, len: usize) {
    for i in 0..len {
        unsafe { start.add(i).write_volatile(MARK) };
    }
}

/// Grows the linear memory by `pages`; the old size in pages, or `usize::MAX` when it cannot.
#[cfg(target_arch = "wasm32")]
fn grow(pages: usize) -> usize {
    core::arch::wasm32::memory_grow(0, pages)
}

/// Built for the host (`cargo clippy --workspace`), there is no linear memory to grow.
#[cfg(not(target_arch = "wasm32"))]
fn grow(_pages: usize) -> usize {
    usize::MAX
}

struct Residue;

impl Guest for Residue {
    fn describe() -> SkillInfo {
        SkillInfo::new(
            "residue",
            env!("CARGO_PKG_VERSION"),
            "Counts what it did not write, then writes.",
        )
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let write_first = input.contains("\"write_first\":true");
        let field = &raw mut FIELD as *mut u8;
        let old_pages = grow(GROWN_PAGES);
        if old_pages == usize::MAX {
            return Err(SkillError::Internal("memory.grow failed".into()));
        }
        let grown = (old_pages * PAGE) as *mut u8;
        let grown_bytes = GROWN_PAGES * PAGE;
        // SAFETY: the static and the pages just grown are inside the linear memory.
        let (dirty_static, dirty_grown) = unsafe {
            if write_first {
                fill(field, FIELD_BYTES);
                fill(grown, grown_bytes);
            }
            let counts = (not_zero(field, FIELD_BYTES), not_zero(grown, grown_bytes));
            fill(field, FIELD_BYTES);
            fill(grown, grown_bytes);
            counts
        };
        Ok(format!(
            "{{\"dirty_static\":{dirty_static},\"dirty_grown\":{dirty_grown}}}"
        ))
    }
}

skillhost_guest::export_skill!(Residue);

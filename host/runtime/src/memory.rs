//! The memory budget of one invocation.
//!
//! Threat: a guest that exhausts the host's memory. A component may hold many core instances,
//! each with its own linear memories and tables, and wasmtime asks the limiter about each one
//! separately, so a per-memory cap is no cap at all (40 memories of 60 MiB each passed a 64 MiB
//! cap). One budget covers every linear memory and every table of every instance of the store,
//! from their creation (start functions included) to the end of the invocation, and the count of
//! instances, memories and tables is capped too. A refused growth traps the guest (exit 4); the
//! refusal is remembered so the error can name it, and the peak of the total is recorded.

use wasmtime::ResourceLimiter;

use crate::limits::human_bytes;

/// Core instances one invocation may create (a Rust skill has a few; a componentize-py one
/// about a dozen).
pub const MAX_INSTANCES: usize = 64;
/// Linear memories one invocation may create.
pub const MAX_MEMORIES: usize = 32;
/// Tables one invocation may create.
pub const MAX_TABLES: usize = 64;
/// The bytes charged per table element (wasmtime stores a pointer per element).
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// Charges every memory and table growth of a store against one budget.
pub struct MemoryCap {
    limit: usize,
    used: usize,
    /// What the last granted growth charged, taken back if the growth then failed.
    last_charge: usize,
    refused: Option<usize>,
    peak: usize,
}

impl MemoryCap {
    /// A budget of `limit` bytes for all memories and tables together.
    pub fn new(limit: usize) -> Self {
        MemoryCap {
            limit,
            used: 0,
            last_charge: 0,
            refused: None,
            peak: 0,
        }
    }

    /// The largest total granted, bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// The total that was asked for when growth was refused, if it was.
    pub fn refused(&self) -> Option<usize> {
        self.refused
    }

    /// Grants `delta` more bytes, or records the refusal and traps the guest.
    fn charge(&mut self, delta: usize) -> wasmtime::Result<bool> {
        let wanted = self.used.saturating_add(delta);
        if wanted > self.limit {
            self.refused = Some(wanted);
            wasmtime::bail!("memory limit of {} reached", human_bytes(self.limit));
        }
        self.used = wanted;
        self.last_charge = delta;
        self.peak = self.peak.max(wanted);
        Ok(true)
    }

    fn uncharge_last(&mut self) {
        self.used = self.used.saturating_sub(self.last_charge);
        self.last_charge = 0;
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.charge(desired.saturating_sub(current))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.uncharge_last();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let elements = desired.saturating_sub(current);
        self.charge(elements.saturating_mul(TABLE_ELEMENT_BYTES))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.uncharge_last();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn growths_of_different_memories_add_up_against_one_budget() {
        let mut cap = MemoryCap::new(64 * MIB);
        assert!(cap.memory_growing(0, 30 * MIB, None).unwrap());
        assert!(cap.memory_growing(0, 30 * MIB, None).unwrap());
        assert!(cap.memory_growing(0, 5 * MIB, None).is_err());
        assert_eq!(cap.refused(), Some(65 * MIB));
        assert_eq!(cap.peak(), 60 * MIB);
    }

    #[test]
    fn table_elements_are_charged_as_pointers() {
        let mut cap = MemoryCap::new(MIB);
        assert!(cap.table_growing(0, 1000, None).unwrap());
        assert_eq!(cap.peak(), 1000 * TABLE_ELEMENT_BYTES);
        assert!(cap.table_growing(1000, 1_000_000, None).is_err());
    }

    #[test]
    fn a_growth_that_failed_after_it_was_granted_is_not_counted() {
        let mut cap = MemoryCap::new(10 * MIB);
        assert!(cap.memory_growing(0, 8 * MIB, None).unwrap());
        cap.memory_grow_failed(wasmtime::Error::msg("no memory"))
            .unwrap();
        assert!(cap.memory_growing(0, 8 * MIB, None).unwrap());
    }
}

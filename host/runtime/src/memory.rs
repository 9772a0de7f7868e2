//! The memory cap of one invocation.
//!
//! Threat: a guest that grows its memory without end. Growth past the cap is refused (the guest
//! traps), the refusal is remembered so the error can name it, and the peak is recorded so
//! memory use can be measured.

use wasmtime::ResourceLimiter;

use crate::limits::human_bytes;

/// Refuses memory growth past `limit` and records the peak and the refusal.
pub struct MemoryCap {
    limit: usize,
    refused: Option<usize>,
    peak: usize,
}

impl MemoryCap {
    /// A cap of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        MemoryCap {
            limit,
            refused: None,
            peak: 0,
        }
    }

    /// The largest size granted, bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// The size asked for when growth was refused, if it was.
    pub fn refused(&self) -> Option<usize> {
        self.refused
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(desired);
            wasmtime::bail!("memory limit of {} reached", human_bytes(self.limit));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

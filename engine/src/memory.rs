//! A global allocator that counts the bytes each thread has allocated and not freed, so that
//! a script can be stopped when it allocates too much.
//!
//! Rhai bounds each string, array and map, but not their total: a map of 9,000 copies of a
//! 10,000-element array reached a resident size of 870 MiB within the operation limit.
//! Binaries install [`CountingAllocator`] as their global allocator, and [`crate::script`]
//! stops a script once its thread has allocated, and not freed,
//! [`crate::limits::RHAI_MAX_MEMORY_BYTES`] more than when the script started. Without the
//! allocator installed the count stays 0 and only Rhai's own limits apply.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread since it started. A block freed by
    /// another thread lowers that thread's count, so the count is exact for memory that one
    /// thread allocates and frees, as a script run does.
    static NET_BYTES: Cell<i64> = const { Cell::new(0) };
}

/// The system allocator, counting the bytes each thread allocates and frees.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAllocator;

fn record(delta: i64) {
    // `LocalKey::try_with` fails only while or after the thread-local is destroyed at thread
    // exit, and an allocation made then is not counted.
    let _ = NET_BYTES.try_with(|net| net.set(net.get().wrapping_add(delta)));
}

fn size(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

// SAFETY: every method passes its arguments unchanged to `System` and returns its result.
// The bookkeeping only updates a constant-initialised thread-local `Cell`, which neither
// allocates nor unwinds.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() {
            record(size(layout.size()));
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let block = unsafe { System.alloc_zeroed(layout) };
        if !block.is_null() {
            record(size(layout.size()));
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from this allocator, hence from `System`, with `layout`.
        unsafe { System.dealloc(block, layout) };
        record(-size(layout.size()));
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `block` came from `System` with `layout`; the caller upholds the rest.
        let moved = unsafe { System.realloc(block, layout, new_size) };
        if !moved.is_null() {
            record(size(new_size).wrapping_sub(size(layout.size())));
        }
        moved
    }
}

/// Returns the bytes this thread has allocated and not freed, by the count of
/// [`CountingAllocator`], or 0 when another allocator is installed.
pub fn thread_net_bytes() -> i64 {
    NET_BYTES.try_with(Cell::get).unwrap_or(0)
}

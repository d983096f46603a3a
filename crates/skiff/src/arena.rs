//! The musl build's allocator: a bump arena, then musl's malloc.
//!
//! A runtime command lives for a few milliseconds and allocates little
//! (config.json, its parsed form, paths, the state JSON). musl's malloc
//! (mallocng) maps a group of slots with `mmap` for each size class it
//! meets and unmaps it again as soon as the group is free: about fifty
//! `mmap` and as many `munmap` calls in one `run`, each `munmap` a TLB
//! flush (docs/benchmarks.md, "2026-12-05"). Here allocations are carved
//! one after the other out of a zero-filled static region (its pages
//! cost a page fault the first time they are touched, no system call),
//! and a free gives memory back only when it is the latest allocation, so
//! the short-lived vectors and strings of parsing are reused. When the
//! region is used up, every further allocation goes to musl's malloc,
//! which frees as usual: a long-lived command (`run` waiting on its
//! container, `events`, a console relay) ends up on the system allocator
//! with at most the region's size kept.
//!
//! The region's offset is one atomic word, so concurrent callers are safe
//! (skiff is single-threaded, but the allocator must not rely on it).
//! A child made by `clone` without `CLONE_VM` has its own copy of the
//! region and of the offset, as it has of any heap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Size of the region: above what a `run` of the default config
/// allocates in all (measured: docs/benchmarks.md).
const SIZE: usize = 1 << 20;

#[repr(C, align(4096))]
struct Region(UnsafeCell<[u8; SIZE]>);

// SAFETY: the bytes are handed out in disjoint ranges (the offset moves
// with compare-and-swap), so no two users share one.
unsafe impl Sync for Region {}

static REGION: Region = Region(UnsafeCell::new([0; SIZE]));
/// Bytes of the region handed out so far (the next free offset).
static USED: AtomicUsize = AtomicUsize::new(0);

pub struct Arena;

fn base() -> usize {
    REGION.0.get() as usize
}

/// Whether `ptr` came from the region (and not from musl's malloc).
fn owns(ptr: *mut u8) -> bool {
    let p = ptr as usize;
    p >= base() && p < base() + SIZE
}

/// Moves the offset from `from` to `to`: true when no one moved it first.
fn swap(from: usize, to: usize) -> bool {
    USED.compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed).is_ok()
}

// SAFETY: every pointer handed out is aligned to the layout and owns
// `size` bytes no other allocation overlaps; pointers of the region go
// back only to the region, the others to `System`.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        loop {
            let used = USED.load(Ordering::Relaxed);
            let start = (base() + used).next_multiple_of(layout.align()) - base();
            let Some(end) = start.checked_add(layout.size()).filter(|&end| end <= SIZE) else {
                // SAFETY: the caller's layout, passed on unchanged.
                return unsafe { System.alloc(layout) };
            };
            if swap(used, end) {
                return (base() + start) as *mut u8;
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !owns(ptr) {
            // SAFETY: a pointer `System` handed out, with its layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        // The latest allocation gives its bytes back; any other stays
        // until the process exits.
        let start = ptr as usize - base();
        let _ = swap(start + layout.size(), start);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !owns(ptr) {
            // SAFETY: a pointer `System` handed out, with its layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let start = ptr as usize - base();
        // The latest allocation grows or shrinks in place while it fits.
        if start + new_size <= SIZE && swap(start + layout.size(), start + new_size) {
            return ptr;
        }
        // SAFETY: `new_size` with the old alignment is a valid layout
        // (the caller's contract for realloc).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both ranges are valid for the smaller size and
            // disjoint (`new` was just handed out).
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: the old allocation, with its layout.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test: the region and its offset are process-wide.
    #[test]
    fn bump_pop_grow_and_fall_back() {
        let a = Arena;
        let l = |size, align| Layout::from_size_align(size, align).unwrap();
        // SAFETY (every block): each pointer goes back to the allocator
        // that made it with the layout it was made with.
        unsafe {
            let p = a.alloc(l(24, 8));
            assert!(owns(p) && (p as usize).is_multiple_of(8));
            let q = a.alloc(l(10, 64));
            assert!(owns(q) && (q as usize).is_multiple_of(64) && q as usize >= p as usize + 24);
            // the latest one is given back and its bytes reused
            a.dealloc(q, l(10, 64));
            let q2 = a.alloc(l(10, 64));
            assert_eq!(q, q2);
            // the latest one grows in place, keeping its bytes
            q2.write_bytes(7, 10);
            let g = a.realloc(q2, l(10, 64), 5000);
            assert_eq!(g, q2);
            assert_eq!(std::slice::from_raw_parts(g, 10), &[7; 10]);
            // an older one moves, with its bytes
            p.write_bytes(9, 24);
            let m = a.realloc(p, l(24, 8), 48);
            assert!(owns(m) && m != p && m as usize >= g as usize + 5000);
            assert_eq!(std::slice::from_raw_parts(m, 24), &[9; 24]);
            a.dealloc(g, l(5000, 64));
            a.dealloc(m, l(48, 8));
            // past the region's end: the system allocator, freed as usual
            let big = a.alloc(l(SIZE + 1, 8));
            assert!(!big.is_null() && !owns(big));
            big.write_bytes(1, SIZE + 1);
            let big = a.realloc(big, l(SIZE + 1, 8), 2 * SIZE);
            assert!(!big.is_null() && !owns(big));
            a.dealloc(big, l(2 * SIZE, 8));
            let rest = SIZE - USED.load(Ordering::Relaxed);
            let fill = a.alloc(l(rest, 1));
            assert!(owns(fill));
            let after = a.alloc(l(16, 8));
            assert!(!after.is_null() && !owns(after));
            a.dealloc(after, l(16, 8));
        }
    }
}

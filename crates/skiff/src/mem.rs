//! `memcpy` and `memmove` for the musl build.
//!
//! musl's x86_64 `memcpy` is one `rep movsq` and a byte loop, whatever the
//! size. A `rep` instruction has a fixed start-up cost of tens of cycles,
//! which a short copy pays in full, and short copies are nearly all of
//! skiff's: about 3 700 calls in one `run`, 1 500 of them of one byte and
//! 95 % under 64 bytes (serde_json writing the state, paths, strings;
//! measured with a uprobe, docs/benchmarks.md "2026-12-05"). They were
//! 3.8 % of all the CPU time of a container's life. Here a copy of up to
//! 32 bytes is two overlapping loads and two stores of the widest size
//! that fits, and a longer one is `rep movsb` (fast on every x86_64 CPU
//! with ERMSB, and correct on all). glibc's are not replaced: they are
//! tuned already.
//!
//! The functions are plain Rust, so the unit tests check them on any
//! target; only the musl build exports them under the C names, where the
//! linker then takes them instead of libc.a's (which is never pulled in:
//! nothing else defines or needs its `memcpy.o`/`memmove.o`).
//!
//! No loop here may be written as a byte-by-byte copy: the compiler would
//! turn it back into a call to `memcpy`, that is to itself.

use std::arch::asm;

/// Copies `n` bytes, `n <= 32`, loading everything before storing any:
/// correct for overlapping ranges too.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn copy_small(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY (every block): each access is within the first or last
    // `n` bytes of the ranges, which the caller guarantees; the unaligned
    // reads and writes have no alignment requirement.
    unsafe {
        if n >= 16 {
            let a = src.cast::<u128>().read_unaligned();
            let b = src.add(n - 16).cast::<u128>().read_unaligned();
            dst.cast::<u128>().write_unaligned(a);
            dst.add(n - 16).cast::<u128>().write_unaligned(b);
        } else if n >= 8 {
            let a = src.cast::<u64>().read_unaligned();
            let b = src.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(a);
            dst.add(n - 8).cast::<u64>().write_unaligned(b);
        } else if n >= 4 {
            let a = src.cast::<u32>().read_unaligned();
            let b = src.add(n - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(a);
            dst.add(n - 4).cast::<u32>().write_unaligned(b);
        } else if n > 0 {
            let (a, b, c) = (*src, *src.add(n / 2), *src.add(n - 1));
            *dst = a;
            *dst.add(n / 2) = b;
            *dst.add(n - 1) = c;
        }
    }
}

/// `rep movsb` forwards (the direction flag is clear at every call, as
/// the ABI requires).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes; if they overlap,
/// `dst` is below `src`.
#[inline(always)]
unsafe fn rep_movsb(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's ranges; the instruction touches exactly them.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _, options(nostack, preserves_flags));
    }
}

/// `memcpy`: ranges that do not overlap.
///
/// # Safety
/// As C's `memcpy`.
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's ranges, which do not overlap.
    unsafe {
        if n <= 32 {
            copy_small(dst, src, n)
        } else {
            rep_movsb(dst, src, n)
        }
    }
    dst
}

/// `memmove`: ranges that may overlap.
///
/// # Safety
/// As C's `memmove`.
pub unsafe fn copy_overlapping(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's ranges. A forward copy is correct when `dst`
    // is below `src` or past the end of it; otherwise the copy runs from
    // the end down (the direction flag set for it and cleared after).
    unsafe {
        if n <= 32 {
            copy_small(dst, src, n)
        } else if (dst as usize).wrapping_sub(src as usize) >= n {
            rep_movsb(dst, src, n)
        } else {
            asm!("std", "rep movsb", "cld",
                inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
                options(nostack));
        }
    }
    dst
}

#[cfg(all(target_env = "musl", not(test)))]
mod export {
    /// C's `memcpy` (musl build).
    ///
    /// # Safety
    /// As C's `memcpy`.
    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: the C contract, passed on.
        unsafe { super::copy(dst, src, n) }
    }

    /// C's `memmove` (musl build).
    ///
    /// # Safety
    /// As C's `memmove`.
    #[no_mangle]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: the C contract, passed on.
        unsafe { super::copy_overlapping(dst, src, n) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn copy_every_size_and_alignment() {
        for n in 0..300 {
            for so in 0..9 {
                for d_off in 0..9 {
                    let src = pattern(n + so + 16);
                    let mut dst = vec![0xAAu8; n + d_off + 16];
                    let want = {
                        let mut w = dst.clone();
                        w[d_off..d_off + n].copy_from_slice(&src[so..so + n]);
                        w
                    };
                    // SAFETY: both ranges are inside their vectors.
                    let r = unsafe { copy(dst.as_mut_ptr().add(d_off), src.as_ptr().add(so), n) };
                    assert_eq!(r, dst[d_off..].as_mut_ptr(), "return value, n={n}");
                    assert_eq!(dst, want, "n={n} src+{so} dst+{d_off}");
                }
            }
        }
    }

    #[test]
    fn copy_overlapping_both_directions() {
        for n in 0..300 {
            for from in 0..40 {
                for to in 0..40 {
                    let mut buf = pattern(n + 40);
                    let mut want = buf.clone();
                    want.copy_within(from..from + n, to);
                    let p = buf.as_mut_ptr();
                    // SAFETY: both ranges are inside the buffer.
                    let r = unsafe { copy_overlapping(p.add(to), p.add(from), n) };
                    assert_eq!(r, buf[to..].as_mut_ptr(), "return value, n={n}");
                    assert_eq!(buf, want, "n={n} from {from} to {to}");
                }
            }
        }
    }
}

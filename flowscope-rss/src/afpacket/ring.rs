//! The memory-mapped TPACKET_V3 receive ring and the block hand-over between
//! the kernel and userspace.
//!
//! Each block starts with a `block_status` word. The kernel fills a block,
//! issues a write barrier and sets `TP_STATUS_USER`; from then on it does not
//! touch the block until userspace writes `TP_STATUS_KERNEL` back. So:
//! - we load the status with `Acquire` before reading any frame in the
//!   block (pairs with the kernel's `smp_wmb` before its status store);
//! - we read the block through a shared slice only while we own it, and the
//!   slice cannot outlive [`MappedRing::with_user_block`]'s closure;
//! - we store `TP_STATUS_KERNEL` with `Release`, after the last read, so
//!   the kernel cannot refill the block under a reader.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::block::BD_STATUS;

/// A `PACKET_RX_RING` mapped into this process; unmapped on drop.
#[derive(Debug)]
pub(crate) struct MappedRing {
    base: NonNull<u8>,
    block_size: usize,
    block_count: usize,
}

// SAFETY: the mapping is owned by this value alone (no other pointer to it
// escapes), has no thread affinity, and is only accessed through `&mut self`
// or the atomic status word, so moving it to another thread is sound.
unsafe impl Send for MappedRing {}

impl MappedRing {
    /// Maps the ring just configured on `fd` with `PACKET_RX_RING`.
    pub(crate) fn map(fd: &OwnedFd, block_size: usize, block_count: usize) -> io::Result<Self> {
        let len = block_size
            .checked_mul(block_count)
            .filter(|&l| l > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty or huge ring"))?;
        // SAFETY: a fresh shared mapping of the socket's ring at a kernel-chosen
        // address; it aliases no Rust object. MAP_POPULATE pre-faults the pages
        // so the first packets do not take page faults. The result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null ring"))?;
        Ok(MappedRing {
            base,
            block_size,
            block_count,
        })
    }

    /// Number of blocks.
    pub(crate) fn block_count(&self) -> usize {
        self.block_count
    }

    /// The status word of block `idx` (`idx < block_count`).
    fn status(&self, idx: usize) -> &AtomicU32 {
        debug_assert!(idx < self.block_count);
        // SAFETY: `idx < block_count`, so the word at idx * block_size + 8 lies
        // inside the mapping (a block is at least one page). Blocks start
        // page-aligned, so the word is 4-byte aligned. It lives as long as
        // `self`, and both sides only access it atomically or with barriers.
        unsafe {
            AtomicU32::from_ptr(
                self.base
                    .as_ptr()
                    .add(idx * self.block_size + BD_STATUS)
                    .cast(),
            )
        }
    }

    /// If the kernel has handed block `idx` to userspace, runs `read` on its
    /// bytes, then hands it back and returns `read`'s result. Returns `None`
    /// (without calling `read`) while the kernel still owns the block.
    pub(crate) fn with_user_block<R>(
        &mut self,
        idx: usize,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        if idx >= self.block_count {
            return None;
        }
        let status = self.status(idx);
        if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: the block lies inside the mapping (idx < block_count). The
        // kernel set TP_STATUS_USER (observed with Acquire above), so it has
        // finished writing the block and leaves it alone until we store
        // TP_STATUS_KERNEL below; nobody else holds a reference (we have
        // `&mut self`). The slice does not escape `read`.
        let block = unsafe {
            std::slice::from_raw_parts(
                self.base.as_ptr().add(idx * self.block_size).cast_const(),
                self.block_size,
            )
        };
        let out = read(block);
        self.status(idx)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        Some(out)
    }
}

impl Drop for MappedRing {
    fn drop(&mut self) {
        // SAFETY: `base` and the length are exactly what mmap returned, and no
        // reference into the mapping outlives `self`.
        unsafe {
            libc::munmap(
                self.base.as_ptr().cast(),
                self.block_size * self.block_count,
            );
        }
    }
}

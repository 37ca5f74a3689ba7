//! The read buffer under the capture parsers: bytes from any `Read`, kept in
//! one contiguous, growable (but capped) buffer so a whole record or block can
//! be lent out as a slice without copying; or a whole capture already in
//! memory (a mapped file, a received buffer), lent out in place with no copy
//! at all.

use std::io::{self, Read};

use bytes::Bytes;

/// Outcome of [`InputBuffer::fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fill {
    /// At least the requested number of bytes is available.
    Ready,
    /// The input ended first; fewer bytes are available.
    Eof,
    /// The request is larger than the buffer may ever grow.
    TooLarge,
}

/// A growable window over a byte stream.
///
/// `buf[start..end]` holds the bytes read but not yet consumed; `offset` is
/// the absolute input position of `buf[start]`. The buffer only grows when a
/// single record does not fit, and never beyond `max_len`, so a hostile length
/// field costs at most `max_len` bytes of memory.
pub(crate) struct InputBuffer<R> {
    reader: R,
    buf: Storage,
    start: usize,
    end: usize,
    offset: u64,
    eof: bool,
    max_len: usize,
}

/// Where the bytes live.
enum Storage {
    /// Read from the stream into a buffer of our own.
    Owned(Vec<u8>),
    /// The whole input, shared with its owner; never refilled.
    Shared(Bytes),
}

impl Storage {
    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Owned(v) => v,
            Storage::Shared(b) => b,
        }
    }
}

impl InputBuffer<io::Empty> {
    /// The whole input at once: every byte is available from the start and
    /// records are lent straight out of `data`.
    pub(crate) fn shared(data: Bytes, max_len: usize) -> Self {
        InputBuffer {
            reader: io::empty(),
            start: 0,
            end: data.len(),
            buf: Storage::Shared(data),
            offset: 0,
            eof: true,
            max_len,
        }
    }
}

impl<R: Read + Send + 'static> InputBuffer<R> {
    /// The same buffer reading through a boxed `Read`.
    pub(crate) fn boxed(self) -> InputBuffer<Box<dyn Read + Send>> {
        InputBuffer {
            reader: Box::new(self.reader),
            buf: self.buf,
            start: self.start,
            end: self.end,
            offset: self.offset,
            eof: self.eof,
            max_len: self.max_len,
        }
    }
}

impl<R: Read> InputBuffer<R> {
    /// `initial` bytes of buffer to start with, growing up to `max_len`.
    pub(crate) fn new(reader: R, initial: usize, max_len: usize) -> Self {
        let initial = initial.clamp(1, max_len.max(1));
        InputBuffer {
            reader,
            buf: Storage::Owned(vec![0; initial]),
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            max_len,
        }
    }

    /// Absolute input offset of the first unconsumed byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The unconsumed bytes currently buffered.
    #[inline]
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.bytes().get(self.start..self.end).unwrap_or(&[])
    }

    /// Current buffer size in bytes (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.bytes().len()
    }

    /// Drops `n` bytes from the front (clamped to what is buffered).
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// Consumes a `block_len`-byte block at the front and lends the `len`
    /// bytes found `at` bytes into it; `None` (nothing consumed) unless the
    /// block is buffered whole and the bytes lie inside it.
    ///
    /// Consuming before the caller is done with the bytes is sound: they stay
    /// in place until the next [`InputBuffer::fill`], which needs `&mut self`
    /// and so cannot run while the returned slice is alive.
    #[inline]
    pub(crate) fn take(&mut self, block_len: usize, at: usize, len: usize) -> Option<&[u8]> {
        let lo = self.start.checked_add(at)?;
        let hi = lo.checked_add(len)?;
        let block_end = self.start.checked_add(block_len)?;
        if hi > block_end || block_end > self.end {
            return None;
        }
        self.start = block_end;
        self.offset += block_len as u64;
        self.buf.bytes().get(lo..hi)
    }

    /// Makes at least `n` unconsumed bytes available, reading as needed.
    ///
    /// Reads fill all free space at once, so small records cost one
    /// comparison here and the syscall is amortised over ~1 MiB.
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<Fill> {
        if self.end - self.start >= n {
            return Ok(Fill::Ready);
        }
        self.fill_slow(n)
    }

    #[cold]
    fn fill_slow(&mut self, n: usize) -> io::Result<Fill> {
        if n > self.max_len {
            return Ok(Fill::TooLarge);
        }
        // Shared input is whole from the start: it is always at its end.
        let buf = match &mut self.buf {
            Storage::Owned(buf) if !self.eof => buf,
            _ => return Ok(Fill::Eof),
        };
        // Move the partial record to the front so the free space is contiguous.
        if self.start > 0 {
            buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if n > buf.len() {
            // Grow geometrically, but only because this record needs it.
            let new_len = n.max(buf.len().saturating_mul(2)).min(self.max_len);
            buf.resize(new_len, 0);
        }
        while self.end < n {
            let space = match buf.get_mut(self.end..) {
                Some(s) if !s.is_empty() => s,
                _ => break,
            };
            match self.reader.read(space) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(Fill::Eof);
                }
                // A misbehaving reader may claim more than the slice it got.
                Ok(k) => self.end = (self.end + k).min(buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(if self.end >= n {
            Fill::Ready
        } else {
            Fill::Eof
        })
    }
}

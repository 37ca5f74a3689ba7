//! What a [`TcpReassembler`](super::TcpReassembler) may hold and how it
//! settles overlaps.

/// Which bytes win when two captured segments disagree about the same
/// stream range.
///
/// Real stacks differ here (Suricata's target-based policies, Zeek's
/// `rexmit_inconsistency`); an evasion attempt sends overlapping segments
/// with different bytes and hopes the monitor keeps the other copy than the
/// receiver does. Either way the disagreement is reported as
/// `tcp.overlap_conflict`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OverlapPolicy {
    /// The bytes that arrived first are kept (BSD/Windows-like for most
    /// overlaps, and what a monitor sees first).
    #[default]
    FirstWins,
    /// Later bytes replace held ones (Linux-like for overlaps that start at
    /// or before the held segment). Bytes already delivered are never
    /// replaced: they are gone by the time a retransmission arrives.
    LastWins,
}

/// Limits and policy of a [`TcpReassemblerFactory`](super::TcpReassemblerFactory).
///
/// Fields are public; start from [`Default`] and change what you need (or
/// use the `with_*` helpers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TcpReassemblyConfig {
    /// Which bytes win a conflicting overlap among held segments (and
    /// between held segments and the in-order one that reaches them).
    pub overlap: OverlapPolicy,
    /// Bytes one side may hold out of order before its reassembly stops
    /// (default 256 KiB).
    pub max_held_per_side: usize,
    /// Out-of-order pieces one side may hold: bounds the per-piece
    /// bookkeeping that byte counts alone miss, e.g. 1-byte segments
    /// (default 512).
    pub max_held_segments_per_side: usize,
    /// Bytes held out of order by all reassemblers of one factory together
    /// (default 64 MiB).
    pub max_held_total: usize,
    /// How far past the next expected byte a segment may start and still be
    /// held, and how far an ACK may reach (default 1 MiB). Segments further
    /// out (or ending further than this before it) are counted as
    /// out-of-window and never buffered. Values above
    /// [`TcpReassemblyConfig::MAX_WINDOW`] act as that value, so that
    /// 32-bit sequence arithmetic stays unambiguous.
    pub window: u32,
}

impl TcpReassemblyConfig {
    /// The largest effective `window`: 2^30, a quarter of the sequence
    /// space, which keeps "ahead" and "behind" distinguishable (RFC 7323
    /// bounds real windows by 2^30 for the same reason).
    pub const MAX_WINDOW: u32 = 1 << 30;

    /// Sets [`Self::overlap`].
    pub fn with_overlap(mut self, overlap: OverlapPolicy) -> Self {
        self.overlap = overlap;
        self
    }

    /// Sets [`Self::max_held_per_side`].
    pub fn with_max_held_per_side(mut self, bytes: usize) -> Self {
        self.max_held_per_side = bytes;
        self
    }

    /// Sets [`Self::max_held_segments_per_side`].
    pub fn with_max_held_segments_per_side(mut self, segments: usize) -> Self {
        self.max_held_segments_per_side = segments;
        self
    }

    /// Sets [`Self::max_held_total`].
    pub fn with_max_held_total(mut self, bytes: usize) -> Self {
        self.max_held_total = bytes;
        self
    }

    /// Sets [`Self::window`].
    pub fn with_window(mut self, window: u32) -> Self {
        self.window = window;
        self
    }

    /// The window actually applied: `window` capped at [`Self::MAX_WINDOW`].
    pub fn effective_window(&self) -> u32 {
        self.window.min(Self::MAX_WINDOW)
    }
}

impl Default for TcpReassemblyConfig {
    fn default() -> Self {
        TcpReassemblyConfig {
            overlap: OverlapPolicy::FirstWins,
            max_held_per_side: 256 * 1024,
            max_held_segments_per_side: 512,
            max_held_total: 64 * 1024 * 1024,
            window: 1024 * 1024,
        }
    }
}

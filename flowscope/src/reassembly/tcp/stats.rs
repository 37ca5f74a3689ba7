//! What a [`TcpReassembler`](super::TcpReassembler) counts and the anomaly
//! codes it reports.

use core::ops::{Add, AddAssign};

use flowscope_core::Anomaly;

/// Two captured copies of the same held stream bytes differ (possible
/// evasion); the [`OverlapPolicy`](super::OverlapPolicy) chose the winner.
pub const OVERLAP_CONFLICT: Anomaly = Anomaly::new("tcp.overlap_conflict");
/// A segment started too far from the next expected byte to be held.
pub const SEQ_OUT_OF_WINDOW: Anomaly = Anomaly::new("tcp.seq_out_of_window");
/// The peer acknowledged bytes too far past the next expected byte to be
/// believed; the ACK was ignored.
pub const ACK_OUT_OF_WINDOW: Anomaly = Anomaly::new("tcp.ack_out_of_window");
/// A cap on held bytes or pieces was reached: the side's held data was
/// dropped (reported as a gap) and its reassembly stopped.
pub const REASSEMBLY_OVERFLOW: Anomaly = Anomaly::new("tcp.reassembly_overflow");

/// Counters of one reassembler (both sides together); add them up across
/// flows with [`ReassemblyStats::merge`] or `+`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ReassemblyStats {
    /// Segments fed, every one (pure ACKs and segments of stopped sides included).
    pub segments: u64,
    /// Segments with new bytes at or before the next expected byte.
    pub in_order_segments: u64,
    /// Segments that started past the next expected byte (held, or dropped
    /// as a duplicate of held bytes, or the one that overflowed).
    pub out_of_order_segments: u64,
    /// Bytes sent again: overlapping bytes already delivered (which are not
    /// kept, so cannot be compared), lying before a midstream pickup, or
    /// overlapping held bytes without a conflict.
    pub retransmitted_bytes: u64,
    /// Segments whose bytes disagreed with held bytes they overlapped.
    pub overlap_conflicts: u64,
    /// [`StreamEvent::Gap`](flowscope_core::StreamEvent::Gap) events emitted.
    pub gaps: u64,
    /// Bytes those gaps cover.
    pub gap_bytes: u64,
    /// Segments and ACKs ignored for being outside the window.
    pub out_of_window: u64,
    /// Times a cap was reached and a side's reassembly stopped.
    pub overflows: u64,
    /// Bytes delivered in [`StreamEvent::Data`](flowscope_core::StreamEvent::Data) events.
    pub bytes_delivered: u64,
}

impl ReassemblyStats {
    /// Adds `other` into `self` (saturating).
    pub fn merge(&mut self, other: &ReassemblyStats) {
        let ReassemblyStats {
            segments,
            in_order_segments,
            out_of_order_segments,
            retransmitted_bytes,
            overlap_conflicts,
            gaps,
            gap_bytes,
            out_of_window,
            overflows,
            bytes_delivered,
        } = *other;
        self.segments = self.segments.saturating_add(segments);
        self.in_order_segments = self.in_order_segments.saturating_add(in_order_segments);
        self.out_of_order_segments = self
            .out_of_order_segments
            .saturating_add(out_of_order_segments);
        self.retransmitted_bytes = self.retransmitted_bytes.saturating_add(retransmitted_bytes);
        self.overlap_conflicts = self.overlap_conflicts.saturating_add(overlap_conflicts);
        self.gaps = self.gaps.saturating_add(gaps);
        self.gap_bytes = self.gap_bytes.saturating_add(gap_bytes);
        self.out_of_window = self.out_of_window.saturating_add(out_of_window);
        self.overflows = self.overflows.saturating_add(overflows);
        self.bytes_delivered = self.bytes_delivered.saturating_add(bytes_delivered);
    }
}

impl AddAssign<&ReassemblyStats> for ReassemblyStats {
    fn add_assign(&mut self, rhs: &ReassemblyStats) {
        self.merge(rhs);
    }
}

impl AddAssign for ReassemblyStats {
    fn add_assign(&mut self, rhs: ReassemblyStats) {
        self.merge(&rhs);
    }
}

impl Add for ReassemblyStats {
    type Output = ReassemblyStats;

    fn add(mut self, rhs: ReassemblyStats) -> ReassemblyStats {
        self.merge(&rhs);
        self
    }
}

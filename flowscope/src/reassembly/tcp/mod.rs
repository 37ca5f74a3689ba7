//! TCP stream reassembly: a bounded, zero-copy [`Reassembler`](flowscope_core::Reassembler).
//!
//! Each side's stream starts at ISN+1 when its SYN is seen, else at the
//! first segment with data (midstream pickup); offsets are `u64`, so a
//! stream may cross any number of 32-bit sequence wraps.
//!
//! - In-order bytes go out borrowed from the segment: no copy, no allocation.
//! - Out-of-order bytes are copied and held until the hole before them
//!   fills, the peer acknowledges past the hole (the hole is then a
//!   [`Gap`](flowscope_core::StreamEvent::Gap), as in Zeek), or the stream
//!   is flushed (FIN, RST, flow end).
//! - Re-sent bytes are trimmed; overlaps among held bytes are compared and
//!   settled by [`OverlapPolicy`], reporting `tcp.overlap_conflict` when the
//!   copies differ.
//! - A snap-length-cut segment's missing tail is a gap.
//! - Memory is bounded per side (bytes and pieces) and per factory (bytes);
//!   reaching a cap drops the side's held bytes (reported as a gap), reports
//!   `tcp.reassembly_overflow` and stops that side, like Zeek's
//!   `excessive_data_without_further_acks`. A segment starting beyond the
//!   window is never buffered (`tcp.seq_out_of_window`).
//!
//! Known limits: bytes a held piece lost to the snap length are not filled
//! by a later, fully captured copy of them while it is held; bytes already
//! delivered are not kept, so a differing retransmission of them is only
//! counted as retransmitted, not compared. An ACK captured before the data
//! it acknowledges (asymmetric or reordered capture) turns that data into a
//! gap, as in Zeek.

mod config;
mod reassembler;
mod side;
mod stats;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use config::{OverlapPolicy, TcpReassemblyConfig};
pub use reassembler::{TcpReassembler, TcpReassemblerFactory};
pub use stats::{
    ReassemblyStats, ACK_OUT_OF_WINDOW, OVERLAP_CONFLICT, REASSEMBLY_OVERFLOW, SEQ_OUT_OF_WINDOW,
};

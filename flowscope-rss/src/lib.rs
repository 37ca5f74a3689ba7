//! Run-to-completion workers for flowscope.
//!
//! Each worker is a thread pinned to its own core that owns its packet
//! source and its own flowscope driver from start to end: no shared flow
//! table and no hand-off of packets between pipeline stages. Only the
//! events leave a worker, over one bounded channel to the caller's sink.
//!
//! - [`dispatch`]: the software RSS hash that splits a capture file between
//!   workers (symmetric, fragments kept with their flow).
//! - [`harness`]: the workers, their pinning, the event fan-in and the
//!   per-worker statistics.
//! - [`bypass`]: the bypass policy (TLS handshake done, depth, a caller's
//!   verdict) that hands flows to the XDP prefilter and adds the kernel's
//!   counts back to their records.
//! - [`afpacket`] (Linux): live capture from a TPACKET_V3 ring in a
//!   PACKET_FANOUT group, and raw transmit for replay. The only module
//!   allowed `unsafe`.

// Hostile input must end as a counted skip or an error, never a panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::todo,
        clippy::unreachable
    )
)]

pub mod bypass;
pub mod dispatch;
pub mod harness;
#[cfg(test)]
mod test_frames;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod afpacket;

use flowscope_core::{PacketView, Timestamp};

/// Where one worker's packets come from. Each worker owns exactly one source
/// (its AF_PACKET socket in the fanout group, or its share of a capture
/// file) for its whole life.
pub trait PacketSource: Send {
    /// Hands the next batch of packets (one ring block, one chunk of a file)
    /// to `each`, in capture order. A live source returns
    /// [`Batch::Idle`] after a short poll with nothing to read, so the
    /// worker can expire idle flows on the clock.
    fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> std::io::Result<Batch>;

    /// What the source itself counted (kernel receive and drop counts for a
    /// live socket).
    fn stats(&self) -> SourceStats {
        SourceStats::default()
    }
}

/// What [`PacketSource::next_batch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Batch {
    /// This many packets were handed over.
    Packets(usize),
    /// Nothing arrived before the poll timeout; `now` is the source's clock
    /// (the same clock as its packets' timestamps), for idle expiry.
    Idle {
        /// The source's current time.
        now: Timestamp,
    },
    /// The input has ended; no packet will follow.
    End,
}

/// Counters a source keeps about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceStats {
    /// Packets the kernel handed to this socket (`tp_packets`), or packets
    /// read from the file share.
    pub packets: u64,
    /// Packets the kernel dropped for lack of ring space (`tp_drops`).
    pub drops: u64,
    /// Times the ring was frozen because userspace fell behind
    /// (`tp_freeze_q_cnt`).
    pub freezes: u64,
}

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
//! - [`afpacket`] (Linux): live capture from a TPACKET_V3 ring in a
//!   PACKET_FANOUT group, and raw transmit for replay. The only module
//!   allowed `unsafe`.

pub mod dispatch;
pub mod harness;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod afpacket;

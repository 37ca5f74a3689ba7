//! AF_PACKET: TPACKET_V3 receive ring with PACKET_FANOUT, raw transmit.
//!
//! The only place in flowscope-rss that uses `unsafe` (socket options,
//! `mmap` of the ring, the block hand-over); it lives in `sys` and `ring`,
//! and each block says why it is sound. Everything that reads ring bytes
//! (`block`) is safe code over a slice, with every kernel offset checked.
//!
//! - [`AfPacketSource`]: live capture, a [`PacketSource`](crate::PacketSource).
//! - [`AfPacketConfig`], [`FanoutMode`]: how it is opened.
//! - [`BpfProgram`]: a kernel filter, from `tcpdump -ddd` text.
//! - [`TxSocket`]: raw transmit (replay onto an interface).
//!
//! The operator's guide is `docs/live-capture.md`.

mod block;
pub mod bpf;
pub mod config;
mod ring;
pub mod rx;
mod sys;
pub mod tx;

pub use bpf::{BpfInstruction, BpfParseError, BpfProgram};
pub use config::{AfPacketConfig, FanoutMode};
pub use rx::AfPacketSource;
pub use tx::{BatchSent, TxSocket, MAX_BATCH};

use std::fs::File;
use std::io;
use std::path::Path;

/// Moves the calling thread (only it: `setns(2)` with `CLONE_NEWNET` is
/// per thread) into the network namespace at `path`, e.g.
/// `/run/netns/NAME` (made by `ip netns add NAME`) or `/proc/PID/ns/net`.
/// Sockets and interface names opened afterwards by this thread belong to
/// that namespace; a socket keeps its namespace wherever it is used from.
/// Needs `CAP_SYS_ADMIN`.
pub fn enter_network_namespace(path: &Path) -> io::Result<()> {
    let ns = File::open(path)?;
    sys::setns_net(&ns)
}

//! AF_PACKET: TPACKET_V3 receive ring with PACKET_FANOUT, raw transmit.
//!
//! The only place in flowscope-rss that uses `unsafe` (socket options,
//! `mmap` of the ring); each block says why it is sound.

mod sys;
pub mod tx;

pub use tx::TxSocket;

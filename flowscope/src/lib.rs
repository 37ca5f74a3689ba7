//! # flowscope
//!
//! Passive flow and session tracking for packet capture.
//!
//! The pipeline runs to completion on one core, one packet at a time:
//! [`capture`] hands out [`PacketView`]s, [`extract`] decodes link layers and
//! tunnels into a flow key, [`track`] keeps the flow table, and [`emit`] writes
//! finished flows in formats other tools read (Suricata EVE, Zeek conn.log,
//! CSV, NDJSON). [`driver`] composes the stages. The library is sans-IO and
//! clock-free: time comes only from packet timestamps or from the caller.
//!
//! ```no_run
//! # #[cfg(feature = "pcap")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use flowscope::capture::CaptureReader;
//! use flowscope::driver::FlowPipeline;
//! use flowscope_core::FlowEvent;
//!
//! let mut reader = CaptureReader::open("trace.pcap")?;
//! let mut pipeline = FlowPipeline::five_tuple(Default::default(), Default::default());
//! let mut on_event = |ev: &FlowEvent<_>| {
//!     if let FlowEvent::Ended(rec) = ev {
//!         println!("{:?} {} packets", rec.endpoints(), rec.stats.packets());
//!     }
//! };
//! while let Some(pkt) = reader.next_packet()? {
//!     pipeline.process(&pkt, &mut on_event);
//! }
//! pipeline.finish(&mut on_event);
//! # Ok(()) }
//! # #[cfg(not(feature = "pcap"))] fn main() {}
//! ```
#![forbid(unsafe_code)]
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

#[cfg(feature = "pcap")]
pub mod capture;
pub mod driver;
#[cfg(feature = "emit")]
pub mod emit;
pub mod extract;
pub mod proto;
pub mod reassembly;
pub mod track;

pub use flowscope_core as core;
pub use flowscope_core::{
    Extracted, FiveTuple, FlowEvent, FlowExtractor, FlowRecord, PacketView, Skip, Timestamp,
};

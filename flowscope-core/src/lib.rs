//! # flowscope-core
//!
//! The thin, stable surface of flowscope: plain data types and traits that
//! extractors, trackers, reassemblers and protocol parsers agree on.
//!
//! This crate does no I/O and never reads a clock: every time value comes from
//! a packet's capture timestamp ([`Timestamp`]) or is passed in by the caller,
//! so any run over the same input is reproducible. A third-party parser or
//! extractor compiles against this crate alone.
//!
//! Data flow, bottom to top:
//! - [`packet`]: what a capture source hands over ([`PacketView`], [`Timestamp`], [`LinkType`]).
//! - [`key`]: bidirectional flow keys ([`FiveTuple`], [`IpPair`], [`MacPair`]) and [`Orientation`].
//! - [`wire`]: facts decoded from one packet ([`L4Proto`], [`TcpFlags`], [`TcpInfo`], [`Encap`]).
//! - [`extract`]: the [`FlowExtractor`] trait, its result [`Extracted`] and why a packet was [`Skip`]ped.
//! - [`flow`]: what the tracker reports ([`FlowStats`], [`HistoryString`], [`ConnState`], [`FlowEvent`], …).
//! - [`stream`]: reassembly and parsing ([`Reassembler`], [`SessionParser`], [`DatagramParser`], [`SessionEvent`]).
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
#![warn(missing_docs)]

pub mod extract;
pub mod flow;
pub mod key;
pub mod packet;
pub mod stream;
pub mod wire;

pub use extract::{Extracted, FlowExtractor, FragmentInfo, MalformedReason, PayloadRange, Skip};
pub use flow::{
    CommunityId, ConnState, DirStats, EncapSummary, EndReason, FlowEvent, FlowId, FlowRecord,
    FlowSide, FlowState, FlowStats, HistoryString, TcpEndpointState,
};
pub use key::{FiveTuple, FlowKey, IpPair, MacPair, Orientation};
pub use packet::{LinkType, PacketView, Timestamp};
pub use stream::{
    Anomaly, DatagramParser, DatagramParserFactory, Emit, ParserContext, Probe, Reassembler,
    ReassemblerFactory, SessionEvent, SessionParser, SessionParserFactory, StreamEvent, TcpSegment,
};
pub use wire::{ChecksumStatus, Encap, EncapLayer, L4Proto, PacketAnomalies, TcpFlags, TcpInfo};

//! XDP bypass for flowscope: once userspace has decided it no longer needs a
//! flow's packets (the TLS handshake is over, a stream is past its depth, a
//! caller's verdict), the kernel drops them at the driver and counts them,
//! so flowscope can still report the flow's full packet and byte counts.
//!
//! - `bpf/prefilter.c` is the XDP program: Ethernet, up to two VLAN tags,
//!   IPv4 / IPv6 (with extension headers), TCP/UDP ports; a lookup in a
//!   per-CPU hash map per address family; a hit is counted and dropped,
//!   anything else passes. The build script compiles it with clang when
//!   present and embeds it ([`embedded_object`]).
//! - [`key`] holds the key layout shared with the C program ([`FlowKeyV4`],
//!   [`FlowKeyV6`], [`FlowCounters`]) and [`BypassFlow`], one direction of a
//!   flow, built by hand or from flowscope's extractor output.
//! - [`Prefilter`] loads the program (aya), attaches it to an interface,
//!   inserts and removes flows (both directions), reads their counters and
//!   expires idle ones the way Suricata does.
//!
//! See `docs/prefilter.md` for how it works, what it costs, how to see what
//! is attached and how to recover.
#![deny(unsafe_code)]
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

pub mod key;
mod manager;
mod object;
#[allow(unsafe_code)]
mod pod;

pub use key::{BypassFlow, FlowCounters, FlowKeyV4, FlowKeyV6, KeyError, MapKey};
pub use manager::{
    AttachMode, AttachedMode, BidiCounters, Expiry, Prefilter, PrefilterConfig, PrefilterError,
    PrefilterStats, MAP_V4, MAP_V6, PROGRAM_NAME,
};
pub use object::{embedded_object, MapKind, ObjectSource};

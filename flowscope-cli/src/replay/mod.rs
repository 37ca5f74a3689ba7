//! `flow-replay`: replaying a capture at its own pace, through the
//! pipeline or onto an interface, optionally with its addresses rewritten.
//!
//! Data flow: capture reader → ([`remap`]) → paced by [`pace`] against a
//! [`clock::Clock`] → either the session pipeline ([`pipeline`], events
//! printed as they would occur live) or a frame sink ([`transmit`]: an
//! AF_PACKET socket, counted in a [`transmit::TxReport`]) or a pcap file
//! ([`pcap_out`]).

pub mod clock;
pub mod link;
pub mod pace;
pub mod pcap_out;
pub mod pipeline;
pub mod remap;
pub mod transmit;

//! Putting bytes back in order: TCP stream reassembly ([`tcp`]) and IP
//! defragmentation ([`defrag`]). Both are bounded whatever the input.

pub mod defrag;
pub mod tcp;

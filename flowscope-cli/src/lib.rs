//! Shared pieces of the flowscope command-line tools.
#![deny(unsafe_code)]

pub mod app_events;
// The one module allowed `unsafe`: mapping a capture file (`--mmap`).
#[allow(unsafe_code)]
pub mod input;
pub mod live;
pub mod options;
pub mod replay;
pub mod summary;

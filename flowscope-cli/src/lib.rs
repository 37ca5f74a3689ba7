//! Shared pieces of the flowscope command-line tools.
#![forbid(unsafe_code)]

pub mod app_events;
pub mod live;
pub mod options;
pub mod replay;
pub mod summary;

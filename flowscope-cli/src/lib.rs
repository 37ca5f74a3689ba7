//! Shared pieces of the flowscope command-line tools.
#![forbid(unsafe_code)]

pub mod summary;

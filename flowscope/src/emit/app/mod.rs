//! Application-layer records in other tools' formats.

#[cfg(feature = "http")]
pub mod http;

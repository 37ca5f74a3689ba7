//! Application-layer records in other tools' formats.

#[cfg(feature = "dns")]
pub mod dns;

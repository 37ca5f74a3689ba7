//! Application-protocol objects of the output formats.

#[cfg(feature = "tls")]
pub mod tls;

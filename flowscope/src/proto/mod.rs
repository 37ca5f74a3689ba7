//! Application protocol parsers, each a [`SessionParser`](flowscope_core::SessionParser)
//! or [`DatagramParser`](flowscope_core::DatagramParser) behind its feature.

#[cfg(feature = "dns")]
pub mod dns;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "tls")]
pub mod tls;

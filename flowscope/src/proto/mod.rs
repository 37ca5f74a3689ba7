//! Application protocol parsers, each a [`SessionParser`](flowscope_core::SessionParser)
//! or [`DatagramParser`](flowscope_core::DatagramParser) behind its feature,
//! and [`AppMessage`], the message type of the built-in set.

#[cfg(feature = "dns")]
pub mod dns;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "tls")]
pub mod tls;

use std::any::Any;

/// A message of any built-in parser; third-party parsers' messages fit in
/// [`AppMessage::Other`] (a crate may `impl From<TheirMessage> for AppMessage`).
#[derive(Debug)]
#[non_exhaustive]
pub enum AppMessage {
    /// An HTTP/1.x transaction.
    #[cfg(feature = "http")]
    Http(http::HttpTransaction),
    /// A TLS handshake message.
    #[cfg(feature = "tls")]
    Tls(tls::TlsMessage),
    /// A DNS message.
    #[cfg(feature = "dns")]
    Dns(dns::DnsMessage),
    /// A message of a parser outside this crate.
    Other(Box<dyn Any + Send>),
}

#[cfg(feature = "http")]
impl From<http::HttpTransaction> for AppMessage {
    fn from(m: http::HttpTransaction) -> Self {
        AppMessage::Http(m)
    }
}

#[cfg(feature = "tls")]
impl From<tls::TlsMessage> for AppMessage {
    fn from(m: tls::TlsMessage) -> Self {
        AppMessage::Tls(m)
    }
}

#[cfg(feature = "dns")]
impl From<dns::DnsMessage> for AppMessage {
    fn from(m: dns::DnsMessage) -> Self {
        AppMessage::Dns(m)
    }
}

//! TLS handshakes: SNI, ALPN, versions, JA3/JA3S, JA4, certificates.
//!
//! [`TlsParserFactory`] recognises a TLS (or SSLv2-compatible) hello from
//! the first bytes of either side and makes one [`TlsParser`] per flow. The
//! parser walks the record layer of each side, reassembles the handshake
//! messages it cares about (ClientHello, ServerHello, Certificate) from
//! record fragments up to a per-side cap, and skips everything else record
//! by record without buffering. It emits one [`TlsMessage`] per hello and
//! per cleartext certificate chain; [`TlsSession`] folds them into what
//! Suricata's EVE `tls` record shows.
//!
//! Data flow: `record` (record layer, handshake reassembly) →
//! `client_hello` / `server_hello` / `certificate` (one message each) →
//! `ja3` / `ja4` (fingerprints of a hello) → [`TlsMessage`].

mod certificate;
mod client_hello;
mod ja3;
mod ja4;
mod parser;
mod probe;
mod record;
mod server_hello;
mod session;

#[cfg(test)]
mod tests;

pub use certificate::Certificates;
pub use client_hello::ClientHello;
pub use parser::{TlsConfig, TlsParser};
pub use probe::probe_tls;
pub use probe::TlsParserFactory;
pub use server_hello::ServerHello;
pub use session::{suricata_version_name, TlsSession};

/// One TLS handshake message, as [`TlsParser`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMessage {
    /// A ClientHello (TLS, or an SSLv2-compatible hello).
    ClientHello(ClientHello),
    /// A ServerHello (or a HelloRetryRequest, see
    /// [`ServerHello::is_hello_retry_request`]).
    ServerHello(ServerHello),
    /// A certificate chain sent in the clear (TLS 1.2 and older).
    Certificates(Certificates),
}

/// True for the GREASE values of RFC 8701 (`0x?a?a` with equal bytes).
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// Reads a big-endian `u16` at `at`, if the bytes are there.
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let hi = *b.get(at)?;
    let lo = *b.get(at.checked_add(1)?)?;
    Some(u16::from_be_bytes([hi, lo]))
}

/// Reads a big-endian 24-bit length at `at`, if the bytes are there.
fn be24(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at..at.checked_add(3)?)? {
        &[a, b, c] => Some((usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c)),
        _ => None,
    }
}

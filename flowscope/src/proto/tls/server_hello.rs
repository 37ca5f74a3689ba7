//! The ServerHello (and HelloRetryRequest, which shares its wire form).

use flowscope_core::{Anomaly, Timestamp};
use tls_parser::{
    parse_tls_handshake_server_hello, parse_tls_server_hello_extension, TlsExtension,
};

use super::client_hello::Extensions;
use super::{be16, ja3};

/// RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest
/// (SHA-256 of "HelloRetryRequest").
pub(super) const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Extension type of supported_versions.
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// What the server chose.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerHello {
    /// Capture time of the packet that completed the message.
    pub ts: Timestamp,
    /// Version in the header of the record that carried the message.
    pub record_version: u16,
    /// The hello's own (legacy) version field.
    pub version: u16,
    /// The version chosen in the supported_versions extension (TLS 1.3).
    pub selected_version: Option<u16>,
    /// The chosen cipher suite.
    pub cipher_suite: u16,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    /// The ALPN protocol the server chose (lossy UTF-8).
    pub alpn: Option<String>,
    /// The random is RFC 8446's HelloRetryRequest value.
    pub is_hello_retry_request: bool,
    /// JA3S string (`SSLVersion,Cipher,Extensions`).
    pub ja3s: String,
    /// MD5 of [`ServerHello::ja3s`], lowercase hex.
    pub ja3s_hash: String,
}

impl ServerHello {
    /// The version in force: the supported_versions choice, else the hello's.
    pub fn negotiated_version(&self) -> u16 {
        self.selected_version.unwrap_or(self.version)
    }
}

/// Parses a ServerHello handshake body (after the 4-byte handshake header).
pub(super) fn parse(
    body: &[u8],
    record_version: u16,
    ts: Timestamp,
    anomalies: &mut dyn FnMut(Anomaly),
) -> Option<ServerHello> {
    let Ok((_, sh)) = parse_tls_handshake_server_hello(body) else {
        anomalies(Anomaly::new("tls.malformed_server_hello"));
        return None;
    };
    let mut extensions = Vec::new();
    let mut selected_version = None;
    let mut alpn = None;
    let mut exts = Extensions::new(sh.ext.unwrap_or_default());
    for (ty, tlv) in exts.by_ref() {
        extensions.push(ty);
        if ty == EXT_SUPPORTED_VERSIONS {
            // A ServerHello carries the one chosen version (RFC 8446 §4.2.1).
            selected_version = be16(tlv, 4);
            continue;
        }
        if let Ok((_, TlsExtension::ALPN(list))) = parse_tls_server_hello_extension(tlv) {
            alpn = list
                .first()
                .map(|p| String::from_utf8_lossy(p).into_owned());
        }
    }
    if exts.truncated {
        anomalies(Anomaly::new("tls.truncated_extensions"));
    }
    let (ja3s, ja3s_hash) = ja3::ja3s(sh.version.0, sh.cipher.0, &extensions);
    Some(ServerHello {
        ts,
        record_version,
        version: sh.version.0,
        selected_version,
        cipher_suite: sh.cipher.0,
        extensions,
        alpn,
        is_hello_retry_request: sh.random == HRR_RANDOM,
        ja3s,
        ja3s_hash,
    })
}

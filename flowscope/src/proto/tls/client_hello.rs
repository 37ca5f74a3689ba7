//! The ClientHello: TLS (via tls-parser) and the SSLv2-compatible form.

use flowscope_core::{Anomaly, Timestamp};
use tls_parser::{
    parse_tls_client_hello_extension, parse_tls_handshake_client_hello, TlsExtension,
};

use super::{be16, ja3, ja4};

/// Extension type of the encrypted ClientHello (draft-ietf-tls-esni).
const EXT_ECH: u16 = 0xfe0d;

/// What a ClientHello offered, with its fingerprints.
///
/// Lists keep the wire order and every value, GREASE included, except where
/// a field says otherwise; the fingerprints drop GREASE as their specs say.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientHello {
    /// Capture time of the packet that completed the message.
    pub ts: Timestamp,
    /// Version in the header of the record that carried the message
    /// (`0x0002` for an SSLv2-compatible hello).
    pub record_version: u16,
    /// The hello's own (legacy) version field.
    pub version: u16,
    /// The supported_versions extension (0x002b), raw.
    pub supported_versions: Vec<u16>,
    /// Offered cipher suites, raw. For an SSLv2 hello, the cipher specs
    /// whose first byte is 0 (the ones that name a TLS suite), as `u16`.
    pub cipher_suites: Vec<u16>,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    /// The first host_name of the server_name extension (lossy UTF-8).
    pub sni: Option<String>,
    /// ALPN protocol names in order (lossy UTF-8).
    pub alpn: Vec<String>,
    /// signature_algorithms (0x000d), in order.
    pub signature_algorithms: Vec<u16>,
    /// supported_groups (0x000a), in order.
    pub supported_groups: Vec<u16>,
    /// ec_point_formats (0x000b), in order.
    pub ec_point_formats: Vec<u8>,
    /// An encrypted_client_hello extension (0xfe0d) is present.
    pub ech: bool,
    /// JA3 string (Salesforce's spec); `None` for SSLv2 hellos, which JA3 does not cover.
    pub ja3: Option<String>,
    /// MD5 of [`ClientHello::ja3`], lowercase hex.
    pub ja3_hash: Option<String>,
    /// JA4 (FoxIO, TLS over TCP); `None` for SSLv2 hellos.
    pub ja4: Option<String>,
    /// JA4_r: JA4 with the sorted raw lists instead of their hashes.
    pub ja4_r: Option<String>,
    /// The hello came in SSLv2-compatible framing.
    pub sslv2: bool,
}

impl ClientHello {
    fn empty(ts: Timestamp, record_version: u16, version: u16) -> Self {
        ClientHello {
            ts,
            record_version,
            version,
            supported_versions: Vec::new(),
            cipher_suites: Vec::new(),
            extensions: Vec::new(),
            sni: None,
            alpn: Vec::new(),
            signature_algorithms: Vec::new(),
            supported_groups: Vec::new(),
            ec_point_formats: Vec::new(),
            ech: false,
            ja3: None,
            ja3_hash: None,
            ja4: None,
            ja4_r: None,
            sslv2: false,
        }
    }
}

/// Walks a TLS extension block: `(type, whole TLV bytes)` per extension.
/// Stops at the first extension that runs past the block (`truncated`).
pub(super) struct Extensions<'a> {
    rest: &'a [u8],
    /// Set when the block ended inside an extension.
    pub(super) truncated: bool,
}

impl<'a> Extensions<'a> {
    pub(super) fn new(block: &'a [u8]) -> Self {
        Extensions {
            rest: block,
            truncated: false,
        }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let tlv = be16(self.rest, 2)
            .map(|len| usize::from(len) + 4)
            .and_then(|n| self.rest.get(..n));
        match (be16(self.rest, 0), tlv) {
            (Some(ty), Some(tlv)) => {
                self.rest = self.rest.get(tlv.len()..).unwrap_or_default();
                Some((ty, tlv))
            }
            _ => {
                self.truncated = true;
                self.rest = &[];
                None
            }
        }
    }
}

/// Parses a ClientHello handshake body (after the 4-byte handshake header).
pub(super) fn parse(
    body: &[u8],
    record_version: u16,
    ts: Timestamp,
    anomalies: &mut dyn FnMut(Anomaly),
) -> Option<ClientHello> {
    let Ok((rest, ch)) = parse_tls_handshake_client_hello(body) else {
        anomalies(Anomaly::new("tls.malformed_client_hello"));
        return None;
    };
    let mut out = ClientHello::empty(ts, record_version, ch.version.0);
    out.cipher_suites = ch.ciphers.iter().map(|c| c.0).collect();
    // tls-parser drops an extension block whose length runs past the
    // message; walk what is there so the hello is still reported.
    let block = match ch.ext {
        Some(b) => b,
        None if rest.len() > 2 => {
            anomalies(Anomaly::new("tls.truncated_extensions"));
            rest.get(2..).unwrap_or_default()
        }
        None => &[],
    };
    let mut first_alpn: Option<&[u8]> = None;
    let mut exts = Extensions::new(block);
    for (ty, tlv) in exts.by_ref() {
        out.extensions.push(ty);
        if ty == EXT_ECH {
            out.ech = true;
        }
        let Ok((_, ext)) = parse_tls_client_hello_extension(tlv) else {
            continue;
        };
        match ext {
            TlsExtension::SNI(names) => {
                out.sni = names
                    .iter()
                    .find(|(t, _)| t.0 == 0)
                    .map(|(_, n)| String::from_utf8_lossy(n).into_owned());
            }
            TlsExtension::ALPN(list) => {
                first_alpn = list.first().copied();
                out.alpn = list
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
            }
            TlsExtension::SignatureAlgorithms(v) => out.signature_algorithms = v,
            TlsExtension::EllipticCurves(v) => {
                out.supported_groups = v.iter().map(|g| g.0).collect()
            }
            TlsExtension::EcPointFormats(v) => out.ec_point_formats = v.to_vec(),
            TlsExtension::SupportedVersions(v) => {
                out.supported_versions = v.iter().map(|x| x.0).collect()
            }
            _ => {}
        }
    }
    if exts.truncated {
        anomalies(Anomaly::new("tls.truncated_extensions"));
    }
    let (s, h) = ja3::ja3(&out);
    out.ja3 = Some(s);
    out.ja3_hash = Some(h);
    let (j, r) = ja4::ja4(&out, first_alpn);
    out.ja4 = Some(j);
    out.ja4_r = Some(r);
    Some(out)
}

/// Parses an SSLv2-compatible CLIENT-HELLO record body (after the 2-byte
/// record header, starting at the message type byte 1).
pub(super) fn parse_sslv2(body: &[u8], ts: Timestamp) -> Option<ClientHello> {
    if body.first() != Some(&1) {
        return None;
    }
    let version = be16(body, 1)?;
    let cipher_len = usize::from(be16(body, 3)?);
    let sid_len = usize::from(be16(body, 5)?);
    let challenge_len = usize::from(be16(body, 7)?);
    let specs = body.get(9..9usize.checked_add(cipher_len)?)?;
    // The session id and challenge must be there too, or the record is bogus.
    let need = 9usize
        .checked_add(cipher_len)?
        .checked_add(sid_len)?
        .checked_add(challenge_len)?;
    if body.len() < need || cipher_len % 3 != 0 {
        return None;
    }
    let mut out = ClientHello::empty(ts, 0x0002, version);
    out.sslv2 = true;
    out.cipher_suites = specs
        .chunks_exact(3)
        .filter_map(|c| match c {
            &[0, hi, lo] => Some(u16::from_be_bytes([hi, lo])),
            _ => None,
        })
        .collect();
    Some(out)
}

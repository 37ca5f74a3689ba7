//! The Certificate message of TLS 1.2 and older (sent in the clear): the
//! leaf's fields as Suricata logs them, through x509-parser.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use flowscope_core::{Anomaly, Timestamp};
use sha1::{Digest, Sha1};
use tls_parser::{parse_tls_handshake_msg_certificate, TlsMessageHandshake};
use x509_parser::extensions::GeneralName;
use x509_parser::parse_x509_certificate;

/// A server's certificate chain: the leaf's fields and the chain length.
///
/// Text fields use Suricata's EVE forms: names as x509-parser prints them
/// (`C=US, O=Let's Encrypt, CN=R3`), the serial as colon-separated
/// uppercase hex of its DER bytes, the fingerprint as colon-separated
/// lowercase hex of the SHA-1 of the leaf's DER.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Certificates {
    /// Capture time of the packet that completed the message.
    pub ts: Timestamp,
    /// Number of certificates in the message.
    pub chain_len: usize,
    /// The leaf's subject.
    pub subject: Option<String>,
    /// The leaf's issuer (Suricata's `issuerdn`).
    pub issuer: Option<String>,
    /// The leaf's subjectAltName entries: DNS names and IP addresses as
    /// text, other kinds in x509-parser's display form.
    pub san: Vec<String>,
    /// The leaf's serial number.
    pub serial: Option<String>,
    /// The leaf's notBefore, seconds since the Unix epoch.
    pub not_before: Option<i64>,
    /// The leaf's notAfter, seconds since the Unix epoch.
    pub not_after: Option<i64>,
    /// SHA-1 of the leaf's DER.
    pub fingerprint: Option<String>,
}

/// Colon-separated hex.
fn colon_hex(bytes: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = if upper {
            write!(s, "{b:02X}")
        } else {
            write!(s, "{b:02x}")
        };
    }
    s
}

fn general_name(g: &GeneralName<'_>) -> String {
    match g {
        GeneralName::DNSName(s) => (*s).to_owned(),
        GeneralName::IPAddress(b) => match *b {
            &[a, b, c, d] => Ipv4Addr::new(a, b, c, d).to_string(),
            v => match <[u8; 16]>::try_from(v) {
                Ok(v6) => Ipv6Addr::from(v6).to_string(),
                Err(_) => g.to_string(),
            },
        },
        other => other.to_string(),
    }
}

/// Parses a Certificate handshake body (after the 4-byte handshake header).
pub(super) fn parse(
    body: &[u8],
    ts: Timestamp,
    anomalies: &mut dyn FnMut(Anomaly),
) -> Option<Certificates> {
    let Ok((_, TlsMessageHandshake::Certificate(c))) = parse_tls_handshake_msg_certificate(body)
    else {
        anomalies(Anomaly::new("tls.malformed_certificate"));
        return None;
    };
    let mut out = Certificates {
        ts,
        chain_len: c.cert_chain.len(),
        subject: None,
        issuer: None,
        san: Vec::new(),
        serial: None,
        not_before: None,
        not_after: None,
        fingerprint: None,
    };
    let Some(leaf) = c.cert_chain.first() else {
        return Some(out);
    };
    out.fingerprint = Some(colon_hex(&Sha1::digest(leaf.data), false));
    match parse_x509_certificate(leaf.data) {
        Ok((_, x)) => {
            out.subject = Some(x.subject().to_string());
            out.issuer = Some(x.issuer().to_string());
            out.serial = Some(colon_hex(x.raw_serial(), true));
            out.not_before = Some(x.validity().not_before.timestamp());
            out.not_after = Some(x.validity().not_after.timestamp());
            match x.subject_alternative_name() {
                Ok(Some(san)) => {
                    out.san = san.value.general_names.iter().map(general_name).collect()
                }
                Ok(None) => {}
                Err(_) => anomalies(Anomaly::new("tls.invalid_certificate")),
            }
        }
        Err(_) => anomalies(Anomaly::new("tls.invalid_certificate")),
    }
    Some(out)
}

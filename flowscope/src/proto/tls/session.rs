//! [`TlsSession`]: one connection's handshake facts, folded from messages.

use super::{Certificates, ClientHello, ServerHello, TlsMessage};

/// What one TLS connection showed, as Suricata's EVE `tls` record keeps it:
/// the first ClientHello (Suricata fingerprints the first one only), the
/// last ServerHello (the one after a HelloRetryRequest wins), and the first
/// cleartext certificate chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSession {
    /// The first ClientHello.
    pub client_hello: Option<ClientHello>,
    /// The last ServerHello.
    pub server_hello: Option<ServerHello>,
    /// The first certificate chain seen in the clear.
    pub certificates: Option<Certificates>,
    /// Number of ClientHellos (2 after a HelloRetryRequest).
    pub client_hellos: u32,
    /// The server sent a HelloRetryRequest.
    pub hello_retry_request: bool,
}

impl TlsSession {
    /// Folds one message in.
    pub fn apply(&mut self, msg: &TlsMessage) {
        match msg {
            TlsMessage::ClientHello(ch) => {
                self.client_hellos = self.client_hellos.saturating_add(1);
                if self.client_hello.is_none() {
                    self.client_hello = Some(ch.clone());
                }
            }
            TlsMessage::ServerHello(sh) => {
                self.hello_retry_request |= sh.is_hello_retry_request;
                self.server_hello = Some(sh.clone());
            }
            TlsMessage::Certificates(c) => {
                if self.certificates.is_none() {
                    self.certificates = Some(c.clone());
                }
            }
        }
    }

    /// The version the server settled on (supported_versions choice, else
    /// the ServerHello's version), if a ServerHello was seen.
    pub fn version(&self) -> Option<u16> {
        self.server_hello
            .as_ref()
            .map(ServerHello::negotiated_version)
    }
}

/// Suricata's name for a TLS version (`SSLVersionToString` in its
/// `app-layer-ssl.c`): `"TLSv1"`, `"TLS 1.2"`, `"TLS 1.3"`, drafts, else `0x%04x`.
pub fn suricata_version_name(v: u16) -> String {
    let s = match v {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        0x7f01..=0x7f0f => "TLS 1.3 draft-<16",
        0x7f10..=0x7f1c => {
            return format!("TLS 1.3 draft-{}", v & 0xff);
        }
        0xfb14 => "TLS 1.3 draft-20-fb",
        0xfb15 => "TLS 1.3 draft-21-fb",
        0xfb16 => "TLS 1.3 draft-22-fb",
        0xfb17 => "TLS 1.3 draft-23-fb",
        0xfb1a => "TLS 1.3 draft-26-fb",
        _ => return format!("0x{v:04x}"),
    };
    s.to_owned()
}

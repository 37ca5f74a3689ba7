//! JA4 (FoxIO, TLS over TCP), per `technical_details/JA4.md` of
//! FoxIO-LLC/ja4: `t`, version, `d`/`i`, cipher count, extension count and
//! ALPN characters; then `_` and the hash of the sorted ciphers; then `_`
//! and the hash of the sorted extensions (less SNI and ALPN) followed by
//! the signature algorithms. GREASE values are ignored everywhere.

use std::fmt::Write;

use sha2::{Digest, Sha256};

use super::{is_grease, ClientHello};

const EXT_SNI: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// Two-character version code: highest non-GREASE supported_versions
/// value when the extension is present, else the hello's version.
fn version_code(ch: &ClientHello) -> &'static str {
    let v = if ch.extensions.contains(&EXT_SUPPORTED_VERSIONS) {
        ch.supported_versions
            .iter()
            .copied()
            .filter(|&v| !is_grease(v))
            .max()
            .unwrap_or(0)
    } else {
        ch.version
    };
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// First and last character of the first ALPN value; the hex rule when
/// either end byte is not ASCII alphanumeric; `00` when there is none.
fn alpn_chars(first: Option<&[u8]>) -> [char; 2] {
    let Some(v) = first.filter(|v| !v.is_empty()) else {
        return ['0', '0'];
    };
    let (Some(&a), Some(&b)) = (v.first(), v.last()) else {
        return ['0', '0'];
    };
    if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() {
        [char::from(a), char::from(b)]
    } else {
        // First hex digit of the first byte, last hex digit of the last byte.
        [hex_digit(a >> 4), hex_digit(b & 0x0f)]
    }
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n & 0x0f), 16).unwrap_or('0')
}

/// Comma-joined 4-digit lowercase hex.
fn hex_list(vals: &[u16]) -> String {
    let mut s = String::with_capacity(vals.len() * 5);
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{v:04x}");
    }
    s
}

/// First 12 hex characters of SHA-256, or `000000000000` for an empty list.
fn hash12(s: &str, empty: bool) -> String {
    if empty {
        return "000000000000".to_owned();
    }
    let d = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(12);
    for b in d.iter().take(6) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// JA4 and JA4_r of a ClientHello whose first ALPN value is `first_alpn`.
pub(super) fn ja4(ch: &ClientHello, first_alpn: Option<&[u8]>) -> (String, String) {
    let mut ciphers: Vec<u16> = ch
        .cipher_suites
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .collect();
    let sni = if exts.contains(&EXT_SNI) { 'd' } else { 'i' };
    let alpn = alpn_chars(first_alpn);
    let mut a = String::with_capacity(10);
    let _ = write!(
        a,
        "t{}{}{:02}{:02}{}{}",
        version_code(ch),
        sni,
        ciphers.len().min(99),
        exts.len().min(99),
        alpn[0],
        alpn[1]
    );
    ciphers.sort_unstable();
    let mut sorted_exts: Vec<u16> = exts
        .into_iter()
        .filter(|&e| e != EXT_SNI && e != EXT_ALPN)
        .collect();
    sorted_exts.sort_unstable();
    let sigs: Vec<u16> = ch
        .signature_algorithms
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .collect();

    let b_raw = hex_list(&ciphers);
    let mut c_raw = hex_list(&sorted_exts);
    if !sigs.is_empty() {
        c_raw.push('_');
        c_raw.push_str(&hex_list(&sigs));
    }
    let ja4 = format!(
        "{a}_{}_{}",
        hash12(&b_raw, ciphers.is_empty()),
        hash12(&c_raw, sorted_exts.is_empty())
    );
    let ja4_r = format!("{a}_{b_raw}_{c_raw}");
    (ja4, ja4_r)
}

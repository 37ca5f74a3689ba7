//! JA3 and JA3S (Salesforce): decimal fields, `-` within a field, `,`
//! between fields, GREASE values (RFC 8701) left out, then MD5.

use std::fmt::Write;

use md5::{Digest, Md5};

use super::{is_grease, ClientHello};

/// Appends `vals` without GREASE, `-`-joined.
fn push_list<T: Copy + Into<u32>>(s: &mut String, vals: &[T], skip_grease: bool) {
    let mut first = true;
    for &v in vals {
        let v: u32 = v.into();
        if skip_grease && u16::try_from(v).is_ok_and(is_grease) {
            continue;
        }
        if !first {
            s.push('-');
        }
        first = false;
        let _ = write!(s, "{v}");
    }
}

/// Lowercase hex MD5 of `s`.
pub(super) fn md5_hex(s: &str) -> String {
    let digest = Md5::digest(s.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// JA3 string and hash of a ClientHello:
/// `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`.
pub(super) fn ja3(ch: &ClientHello) -> (String, String) {
    let mut s = String::with_capacity(256);
    let _ = write!(s, "{},", ch.version);
    push_list(&mut s, &ch.cipher_suites, true);
    s.push(',');
    push_list(&mut s, &ch.extensions, true);
    s.push(',');
    push_list(&mut s, &ch.supported_groups, true);
    s.push(',');
    push_list(&mut s, &ch.ec_point_formats, false);
    let h = md5_hex(&s);
    (s, h)
}

/// JA3S string and hash of a ServerHello: `SSLVersion,Cipher,Extensions`.
pub(super) fn ja3s(version: u16, cipher: u16, extensions: &[u16]) -> (String, String) {
    let mut s = String::with_capacity(64);
    let _ = write!(s, "{version},{cipher},");
    push_list(&mut s, extensions, true);
    let h = md5_hex(&s);
    (s, h)
}

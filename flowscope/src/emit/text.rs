//! Text pieces shared by the writers: string escaping per format, address
//! spellings, Zeek-style uids. Everything appends to a caller's reusable
//! buffer; nothing allocates.

use std::io::{self, Write};
use std::net::IpAddr;

use flowscope_core::L4Proto;

/// A JSON string literal (quotes included), escaped by serde_json.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    // `to_writer` on a `&str` streams the escaped literal straight into `out`.
    serde_json::to_writer(&mut *out, s).map_err(io::Error::other)
}

/// An address as Suricata prints it: IPv4 dotted quad, IPv6 as eight
/// four-digit lowercase hex groups, never compressed (`PrintInetIPv6` in
/// Suricata's `src/util-print.c`: `"%04x:"` per 16-bit word).
pub(crate) fn write_suricata_ip(out: &mut Vec<u8>, ip: IpAddr) -> io::Result<()> {
    match ip {
        IpAddr::V4(v4) => write!(out, "{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            write!(
                out,
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            )
        }
    }
}

/// An address as Zeek prints it (`IPAddr::AsString`, `inet_ntop`).
///
/// Zeek stores IPv4 as IPv4-mapped IPv6 and prints any `::ffff:a.b.c.d` as
/// `a.b.c.d`. Otherwise glibc's `inet_ntop` output, which is RFC 5952 (what
/// Rust's `Display` writes) except that it keeps the dotted tail of the
/// deprecated IPv4-compatible form `::a.b.c.d`.
pub(crate) fn write_zeek_ip(out: &mut Vec<u8>, ip: IpAddr) -> io::Result<()> {
    match ip {
        IpAddr::V4(v4) => write!(out, "{v4}"),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return write!(out, "{v4}");
            }
            let s = v6.segments();
            // glibc: the longest zero run starts at word 0 and is exactly six words long.
            if s[..6].iter().all(|&w| w == 0) && s[6] != 0 {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return write!(out, "::{a}.{b}.{c}.{d}");
            }
            write!(out, "{v6}")
        }
    }
}

/// EVE's `proto` name ([`L4Proto::eve_name`]) without its allocation for
/// unnamed protocols: the bare number. Never needs JSON or CSV escaping.
pub(crate) fn write_eve_proto(out: &mut Vec<u8>, l4: L4Proto) -> io::Result<()> {
    match l4 {
        L4Proto::Other(n) => write!(out, "{n}"),
        named => out.write_all(named.eve_name().as_bytes()),
    }
}

/// An address in RFC 5952 form (CSV, NDJSON).
pub(crate) fn write_plain_ip(out: &mut Vec<u8>, ip: IpAddr) -> io::Result<()> {
    write!(out, "{ip}")
}

/// The IP version of an address (EVE's `ip_v`); an IPv4-mapped IPv6
/// address counts as 6, since it came in an IPv6 header.
pub(crate) fn ip_version(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A Zeek ASCII-log string value with Zeek's escaping:
/// - empty → `(empty)` (the `#empty_field` marker);
/// - exactly `-` → `\x2d`, so it cannot read as the unset marker;
/// - ASCII control bytes (tab, the separator, included), DEL and `\` →
///   `\xNN` (lowercase hex, as `ODesc::AddBytes` does);
/// - other bytes as they are (the input is valid UTF-8, which Zeek's
///   default `LogAscii::enable_utf_8=T` keeps).
///
/// `lowercase` applies Zeek's `to_lower` (used for `service`).
pub(crate) fn write_zeek_str(out: &mut Vec<u8>, s: &str, lowercase: bool) -> io::Result<()> {
    if s.is_empty() {
        out.extend_from_slice(b"(empty)");
        return Ok(());
    }
    if s == "-" {
        out.extend_from_slice(b"\\x2d");
        return Ok(());
    }
    for &b in s.as_bytes() {
        if b < 0x20 || b == 0x7f || b == b'\\' {
            // Both nibbles are < 16, the length of HEX.
            #[allow(clippy::indexing_slicing)]
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0x0f)],
            ]);
        } else if lowercase {
            out.push(b.to_ascii_lowercase());
        } else {
            out.push(b);
        }
    }
    Ok(())
}

/// One RFC 4180 field: as is, or between double quotes with inner quotes
/// doubled when it holds a comma, a quote, CR or LF.
pub(crate) fn write_csv_field(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        out.push(b'"');
        for &b in s.as_bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Zeek's base-62 digits (`uitoa_n` in Zeek's `src/util.cc`).
const BASE62: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `prefix` + `value` in base 62, least significant digit first, exactly as
/// Zeek's `uitoa_n(value, buf, n, 62, prefix)` builds uids (it does not
/// reverse the digits). A `u64` needs at most 11 digits.
pub(crate) fn write_zeek_uid(out: &mut Vec<u8>, prefix: u8, value: u64) {
    out.push(prefix);
    let mut v = value;
    loop {
        // v % 62 < 62: the index is in bounds; `get` keeps that checked anyway.
        if let Some(&d) = BASE62.get((v % 62) as usize) {
            out.push(d);
        }
        v /= 62;
        if v == 0 {
            break;
        }
    }
}

/// 64-bit FNV-1a, for deterministic derived identifiers.
pub(crate) fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The 16 bytes of an address (IPv4 as IPv4-mapped IPv6), for hashing.
pub(crate) fn ip_bytes16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn zeek_ip(s: &str) -> String {
        let ip: IpAddr = s.parse().unwrap();
        let mut v = Vec::new();
        write_zeek_ip(&mut v, ip).unwrap();
        String::from_utf8(v).unwrap()
    }

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn suricata_ipv6_is_uncompressed() {
        // PrintInetIPv6 prints "%04x" for each of the 8 words.
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            s(|v| write_suricata_ip(v, ip).unwrap()),
            "2001:0db8:0000:0000:0000:0000:0000:0001"
        );
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(s(|v| write_suricata_ip(v, ip).unwrap()), "192.0.2.1");
    }

    #[test]
    fn zeek_addresses() {
        assert_eq!(zeek_ip("2001:db8::1"), "2001:db8::1");
        // RFC 5952 4.2.2: a single zero group is not compressed.
        assert_eq!(zeek_ip("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
        // Zeek keeps IPv4 as v4-mapped internally and prints it dotted.
        assert_eq!(zeek_ip("::ffff:192.0.2.7"), "192.0.2.7");
        // glibc inet_ntop keeps the dotted tail of ::a.b.c.d ...
        assert_eq!(zeek_ip("::192.0.2.7"), "::192.0.2.7");
        // ... but not for ::1 (the zero run is 7 words long).
        assert_eq!(zeek_ip("::1"), "::1");
        assert_eq!(zeek_ip("::"), "::");
    }

    #[test]
    fn zeek_string_escaping() {
        assert_eq!(s(|v| write_zeek_str(v, "", false).unwrap()), "(empty)");
        assert_eq!(s(|v| write_zeek_str(v, "-", false).unwrap()), "\\x2d");
        assert_eq!(
            s(|v| write_zeek_str(v, "a\tb\\c\x7f", false).unwrap()),
            "a\\x09b\\x5cc\\x7f"
        );
        assert_eq!(
            s(|v| write_zeek_str(v, "HTTP,ssl", true).unwrap()),
            "http,ssl"
        );
        assert_eq!(s(|v| write_zeek_str(v, "é", false).unwrap()), "é");
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(s(|v| write_csv_field(v, "plain")), "plain");
        assert_eq!(s(|v| write_csv_field(v, "a,b")), "\"a,b\"");
        assert_eq!(
            s(|v| write_csv_field(v, "say \"hi\"")),
            "\"say \"\"hi\"\"\""
        );
        assert_eq!(
            s(|v| write_csv_field(v, "two\r\nlines")),
            "\"two\r\nlines\""
        );
    }

    #[test]
    fn zeek_uid_digits() {
        // uitoa_n emits the least significant digit first: 62 = "10" in base 62, written "01".
        assert_eq!(s(|v| write_zeek_uid(v, b'C', 0)), "C0");
        assert_eq!(s(|v| write_zeek_uid(v, b'C', 61)), "CZ");
        assert_eq!(s(|v| write_zeek_uid(v, b'C', 62)), "C01");
        // 62^10 < 2^64 < 62^11: eleven digits at most.
        assert_eq!(s(|v| write_zeek_uid(v, b'C', u64::MAX)).len(), 12);
    }

    #[test]
    fn eve_proto_names() {
        // Same text as the core's eve_name for every protocol number.
        for p in 0..=255u8 {
            let l4 = L4Proto::from_ip_proto(p);
            assert_eq!(s(|v| write_eve_proto(v, l4).unwrap()), l4.eve_name());
        }
    }

    #[test]
    fn json_strings() {
        assert_eq!(
            s(|v| write_json_str(v, "a\"b\\\n").unwrap()),
            "\"a\\\"b\\\\\\n\""
        );
    }

    #[test]
    fn fnv_known_vector() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (Fowler/Noll/Vo test vectors).
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"", b"a"]), fnv1a64(&[b"a"]));
    }
}

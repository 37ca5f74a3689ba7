//! What the DNS parsers emit: one owned [`DnsMessage`] per message seen.

use std::net::{Ipv4Addr, Ipv6Addr};

use flowscope_core::{FlowSide, Timestamp};

/// The presentation form of the root name (RFC 1035 §5.1).
pub const ROOT_NAME: &str = ".";

/// One DNS message (query or response), decoded as far as it was well formed.
///
/// Names are in presentation format (RFC 1035 §5.1): labels joined by `.`,
/// case kept as on the wire, no trailing dot, the root as [`ROOT_NAME`]; a
/// `.` or `\` inside a label is escaped with `\`, and any byte outside
/// printable ASCII (`!`..=`~`) is written `\DDD` (decimal), so a name is
/// always plain ASCII and never ambiguous.
///
/// A malformed message is still emitted with everything decoded before the
/// fault (the header always), and [`DnsMessage::malformed`] says what was
/// wrong; the parser also reports a `dns.malformed` anomaly for it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsMessage {
    /// Capture time of the packet that completed the message.
    pub ts: Timestamp,
    /// The side of the flow that sent it.
    pub side: FlowSide,
    /// The message ID.
    pub id: u16,
    /// The QR bit: a response.
    pub is_response: bool,
    /// The 4-bit OPCODE (0 query, 1 inverse query, 2 status, 4 notify, 5 update, 6 DSO).
    pub opcode: u8,
    /// The 4-bit header RCODE (the EDNS extension bits live in the OPT record).
    pub rcode: u8,
    /// The header flag bits.
    pub flags: DnsFlags,
    /// The section counts the header announced (may exceed what was decoded).
    pub counts: DnsCounts,
    /// The question section.
    pub questions: Vec<DnsQuestion>,
    /// The answer section.
    pub answers: Vec<DnsRecord>,
    /// The authority section.
    pub authorities: Vec<DnsRecord>,
    /// The additional section (the EDNS OPT record included).
    pub additionals: Vec<DnsRecord>,
    /// For a response: capture time of the query it answers (same ID, and
    /// same question name and type when the response has a question), when
    /// that query was seen earlier on this flow.
    pub query_ts: Option<Timestamp>,
    /// Why decoding stopped early or what was inconsistent; `None` when the
    /// whole message decoded cleanly.
    pub malformed: Option<DnsError>,
    /// Length of the message in bytes (without the TCP length prefix).
    pub len: u16,
}

impl DnsMessage {
    /// The raw 16-bit flags word of the header (QR, OPCODE, AA … RCODE).
    pub fn flags_word(&self) -> u16 {
        let f = &self.flags;
        let bit = |b: bool, m: u16| if b { m } else { 0 };
        bit(self.is_response, 0x8000)
            | (u16::from(self.opcode & 0x0f) << 11)
            | bit(f.aa, 0x0400)
            | bit(f.tc, 0x0200)
            | bit(f.rd, 0x0100)
            | bit(f.ra, 0x0080)
            | bit(f.z, 0x0040)
            | bit(f.ad, 0x0020)
            | bit(f.cd, 0x0010)
            | u16::from(self.rcode & 0x0f)
    }
}

/// The one-bit header flags (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD/CD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DnsFlags {
    /// Authoritative answer.
    pub aa: bool,
    /// Truncated.
    pub tc: bool,
    /// Recursion desired.
    pub rd: bool,
    /// Recursion available.
    pub ra: bool,
    /// The reserved Z bit (must be zero).
    pub z: bool,
    /// Authentic data.
    pub ad: bool,
    /// Checking disabled.
    pub cd: bool,
}

impl DnsFlags {
    /// The flag bits of a header flags word.
    pub const fn from_word(w: u16) -> Self {
        DnsFlags {
            aa: w & 0x0400 != 0,
            tc: w & 0x0200 != 0,
            rd: w & 0x0100 != 0,
            ra: w & 0x0080 != 0,
            z: w & 0x0040 != 0,
            ad: w & 0x0020 != 0,
            cd: w & 0x0010 != 0,
        }
    }
}

/// The section counts of the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DnsCounts {
    /// QDCOUNT.
    pub questions: u16,
    /// ANCOUNT.
    pub answers: u16,
    /// NSCOUNT.
    pub authorities: u16,
    /// ARCOUNT.
    pub additionals: u16,
}

/// One entry of the question section.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsQuestion {
    /// QNAME, in presentation format; when [`DnsQuestion::name_fault`] is
    /// set, only the labels decoded before the fault (possibly none).
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS (the mDNS unicast-response bit is not stripped).
    pub qclass: u16,
    /// Why QNAME did not decode whole, when the question could still be
    /// delimited: an extended label type (the name is taken to end at that
    /// byte), a compression loop or a name over 255 bytes (the name ends
    /// after its first pointer or its root byte). QTYPE and QCLASS are the
    /// bytes after that end, as Wireshark reads them; the message's
    /// [`DnsMessage::malformed`] is set and nothing after this question is
    /// decoded.
    pub name_fault: Option<DnsError>,
}

/// One resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsRecord {
    /// Owner name, in presentation format.
    pub name: String,
    /// TYPE.
    pub rtype: u16,
    /// CLASS (for OPT: the requester's UDP payload size).
    pub rclass: u16,
    /// TTL (for OPT: extended RCODE, version and flags).
    pub ttl: u32,
    /// The decoded RDATA.
    pub data: DnsRdata,
}

/// Decoded RDATA. Types without a variant are kept as [`DnsRdata::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsRdata {
    /// An IPv4 address (type 1).
    A(Ipv4Addr),
    /// An IPv6 address (type 28).
    Aaaa(Ipv6Addr),
    /// A name server (type 2).
    Ns(String),
    /// A canonical name (type 5).
    Cname(String),
    /// A pointer (type 12).
    Ptr(String),
    /// A mail exchanger (type 15).
    Mx {
        /// Preference (lower first).
        preference: u16,
        /// The exchange host.
        exchange: String,
    },
    /// Character strings (type 16), each as on the wire.
    Txt(Vec<Vec<u8>>),
    /// Start of authority (type 6).
    Soa(Box<DnsSoa>),
    /// A service location (type 33, RFC 2782).
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: String,
    },
    /// Service binding (type 64 SVCB or 65 HTTPS, RFC 9460): the fixed part;
    /// the SvcParams are not decoded.
    Svcb {
        /// 64 (SVCB) or 65 (HTTPS).
        rtype: u16,
        /// SvcPriority (0 = alias mode).
        priority: u16,
        /// TargetName.
        target: String,
        /// Length of the undecoded SvcParams.
        params_len: u16,
    },
    /// The EDNS pseudo-record (type 41, RFC 6891): its options.
    Opt(Vec<EdnsOption>),
    /// A type without a decoder here.
    Other {
        /// TYPE.
        rtype: u16,
        /// RDLENGTH.
        len: u16,
    },
    /// RDATA that did not fit its type (wrong length, name overrunning it).
    Malformed {
        /// TYPE.
        rtype: u16,
        /// RDLENGTH.
        len: u16,
    },
}

/// The fields of an SOA record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsSoa {
    /// Primary name server.
    pub mname: String,
    /// Responsible mailbox.
    pub rname: String,
    /// Zone serial.
    pub serial: u32,
    /// Refresh interval (s).
    pub refresh: u32,
    /// Retry interval (s).
    pub retry: u32,
    /// Expire limit (s).
    pub expire: u32,
    /// Negative-caching TTL (s).
    pub minimum: u32,
}

/// One EDNS option of an OPT record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EdnsOption {
    /// OPTION-CODE.
    pub code: u16,
    /// OPTION-DATA.
    pub data: Vec<u8>,
}

/// Why a message did not decode whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DnsError {
    /// The message ended inside a field, or a pointer pointed past its end.
    Truncated,
    /// A label type other than 00 (label) or 11 (pointer): the extended
    /// (0x40) and reserved (0x80) types, i.e. a length byte above 63.
    BadLabelType,
    /// A name expanded past 255 bytes (RFC 1035 §2.3.4).
    NameTooLong,
    /// Compression pointers looped (too many jumps).
    CompressionLoop,
    /// An RDATA length disagreed with its type's layout.
    BadRdata,
    /// More records than the parser keeps for one message.
    TooManyRecords,
    /// Bytes left after the last record the header announced.
    TrailingBytes,
}

impl DnsError {
    /// A stable `snake_case` name.
    pub const fn name(self) -> &'static str {
        match self {
            DnsError::Truncated => "truncated",
            DnsError::BadLabelType => "bad_label_type",
            DnsError::NameTooLong => "name_too_long",
            DnsError::CompressionLoop => "compression_loop",
            DnsError::BadRdata => "bad_rdata",
            DnsError::TooManyRecords => "too_many_records",
            DnsError::TrailingBytes => "trailing_bytes",
        }
    }
}

/// The IANA mnemonic of a resource record TYPE, when it has one here.
pub const fn type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return None,
    })
}

/// The mnemonic of a 4-bit header RCODE (RFC 1035, RFC 2136), when assigned.
pub const fn rcode_name(rcode: u8) -> Option<&'static str> {
    Some(match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return None,
    })
}

//! The `dns` object of Suricata's EVE records, version 3 (Suricata 8;
//! `etc/schema.json` and `doc/userguide/upgrade/8.0-dns-logging-changes.rst`).
//!
//! Layout follows Suricata's `rust/src/dns/log.rs` (`log_json`): `version`,
//! `type` (`request`/`response`), `id`, `flags` (lowercase hex, no padding),
//! the set flag bits `qr aa tc rd ra z` as `true` (unset ones omitted),
//! `opcode`, `rcode` (the header's 4 bits by name), `queries`, `answers`
//! (and optionally `grouped`), `authorities`, `additionals`. Suricata's
//! `tx_id` is its own transaction counter and is not produced. Names are
//! flowscope's presentation form; the root is `""` as Suricata logs it. A
//! question whose name did not decode (`DnsQuestion::name_fault`) is left
//! out of `queries`.

use serde_json::{json, Map, Value};

use crate::proto::dns::{rcode_name, type_name, DnsMessage, DnsRdata, DnsRecord, ROOT_NAME};

/// Which answer layouts to write (Suricata's `formats: [detailed, grouped]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EveDnsFormats {
    /// `answers`: one object per record (Suricata's default).
    pub detailed: bool,
    /// `grouped`: answer data keyed by type.
    pub grouped: bool,
}

impl Default for EveDnsFormats {
    /// Detailed only.
    fn default() -> Self {
        EveDnsFormats {
            detailed: true,
            grouped: false,
        }
    }
}

/// The EVE `dns` object of one message, detailed answers.
pub fn eve_dns(m: &DnsMessage) -> Value {
    eve_dns_with(m, EveDnsFormats::default())
}

/// The EVE `dns` object of one message, with the chosen answer layouts.
pub fn eve_dns_with(m: &DnsMessage, formats: EveDnsFormats) -> Value {
    let mut o = Map::new();
    o.insert("version".into(), json!(3));
    let kind = if m.is_response { "response" } else { "request" };
    o.insert("type".into(), json!(kind));
    o.insert("id".into(), json!(m.id));
    let word = m.flags_word();
    o.insert("flags".into(), json!(format!("{word:x}")));
    let f = &m.flags;
    for (key, set) in [
        ("qr", m.is_response),
        ("aa", f.aa),
        ("tc", f.tc),
        ("rd", f.rd),
        ("ra", f.ra),
        ("z", f.z),
    ] {
        if set {
            o.insert(key.into(), Value::Bool(true));
        }
    }
    o.insert("opcode".into(), json!(m.opcode));
    o.insert("rcode".into(), json!(rcode_str(m.rcode)));
    // A question whose name broke (`name_fault`) has no name to log;
    // Suricata's parser rejects such a message outright.
    let q: Vec<Value> = m
        .questions
        .iter()
        .filter(|q| q.name_fault.is_none())
        .map(|q| json!({ "rrname": eve_name(&q.name), "rrtype": rrtype_str(q.qtype) }))
        .collect();
    if !q.is_empty() {
        o.insert("queries".into(), Value::Array(q));
    }
    if !m.answers.is_empty() {
        if formats.detailed {
            let a = records(&m.answers, Section::Answer);
            if !a.is_empty() {
                o.insert("answers".into(), Value::Array(a));
            }
        }
        if formats.grouped {
            let g = grouped(&m.answers);
            if !g.is_empty() {
                o.insert("grouped".into(), Value::Object(g));
            }
        }
    }
    let auth = records(&m.authorities, Section::Authority);
    if !auth.is_empty() {
        o.insert("authorities".into(), Value::Array(auth));
    }
    let add = records(&m.additionals, Section::Additional);
    if !add.is_empty() {
        o.insert("additionals".into(), Value::Array(add));
    }
    Value::Object(o)
}

/// The schema allows different rdata objects per section: `srv`/`sshfp`
/// only in answers, `soa` in answers and authorities, `opt` in additionals.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Answer,
    Authority,
    Additional,
}

fn records(rs: &[DnsRecord], section: Section) -> Vec<Value> {
    let mut out = Vec::new();
    for r in rs {
        let base = || {
            let mut o = Map::new();
            o.insert("rrname".into(), json!(eve_name(&r.name)));
            o.insert("rrtype".into(), json!(rrtype_str(r.rtype)));
            o.insert("ttl".into(), json!(r.ttl));
            o
        };
        let mut o = base();
        match &r.data {
            DnsRdata::Txt(strings) => {
                // Suricata writes one entry per character string.
                for s in strings {
                    let mut t = base();
                    t.insert("rdata".into(), json!(bytes_str(s)));
                    out.push(Value::Object(t));
                }
                continue;
            }
            DnsRdata::Opt(opts) => {
                // An OPT record without options is not logged.
                if section != Section::Additional || opts.is_empty() {
                    continue;
                }
                let v: Vec<Value> = opts
                    .iter()
                    .map(|x| json!({ "code": x.code, "data": hex(&x.data) }))
                    .collect();
                o.insert("opt".into(), Value::Array(v));
            }
            DnsRdata::Soa(soa) if section != Section::Additional => {
                o.insert(
                    "soa".into(),
                    json!({
                        "mname": eve_name(&soa.mname),
                        "rname": eve_name(&soa.rname),
                        "serial": soa.serial,
                        "refresh": soa.refresh,
                        "retry": soa.retry,
                        "expire": soa.expire,
                        "minimum": soa.minimum,
                    }),
                );
            }
            DnsRdata::Srv {
                priority,
                weight,
                port,
                target,
            } if section == Section::Answer => {
                o.insert(
                    "srv".into(),
                    json!({
                        "priority": priority,
                        "weight": weight,
                        "port": port,
                        "name": eve_name(target),
                    }),
                );
            }
            d => {
                if let Some(s) = rdata_str(d) {
                    o.insert("rdata".into(), json!(s));
                }
            }
        }
        out.push(Value::Object(o));
    }
    out
}

/// `grouped`: type name → list of data, for the types Suricata groups.
fn grouped(rs: &[DnsRecord]) -> Map<String, Value> {
    let mut g = Map::new();
    let mut push = |t: u16, v: Value| {
        if let Value::Array(a) = g
            .entry(rrtype_str(t))
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            a.push(v);
        }
    };
    for r in rs {
        match &r.data {
            DnsRdata::Txt(strings) => {
                for s in strings {
                    push(r.rtype, json!(bytes_str(s)));
                }
            }
            DnsRdata::Soa(soa) => push(
                r.rtype,
                json!({
                    "mname": eve_name(&soa.mname),
                    "rname": eve_name(&soa.rname),
                    "serial": soa.serial,
                    "refresh": soa.refresh,
                    "retry": soa.retry,
                    "expire": soa.expire,
                    "minimum": soa.minimum,
                }),
            ),
            DnsRdata::Srv {
                priority,
                weight,
                port,
                target,
            } => push(
                r.rtype,
                json!({ "priority": priority, "weight": weight, "port": port, "name": eve_name(target) }),
            ),
            d => {
                if let Some(s) = rdata_str(d) {
                    push(r.rtype, json!(s));
                }
            }
        }
    }
    g
}

/// The `rdata` string Suricata writes for address and name types.
fn rdata_str(d: &DnsRdata) -> Option<String> {
    Some(match d {
        DnsRdata::A(a) => a.to_string(),
        // Suricata prints all eight groups, zero-padded, uncompressed.
        DnsRdata::Aaaa(a) => {
            let s = a.segments();
            format!(
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            )
        }
        DnsRdata::Ns(n) | DnsRdata::Cname(n) | DnsRdata::Ptr(n) => eve_name(n).to_owned(),
        DnsRdata::Mx { exchange, .. } => eve_name(exchange).to_owned(),
        _ => return None,
    })
}

fn eve_name(n: &str) -> &str {
    if n == ROOT_NAME {
        ""
    } else {
        n
    }
}

fn rrtype_str(t: u16) -> String {
    type_name(t).map_or_else(|| t.to_string(), str::to_owned)
}

fn rcode_str(rcode: u8) -> String {
    rcode_name(rcode).map_or_else(|| rcode.to_string(), str::to_owned)
}

/// Character-string bytes as text: printable ASCII as is, anything else
/// `\xNN`, so the JSON string is always valid and free of control bytes.
fn bytes_str(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if (0x20..0x7f).contains(&c) {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use flowscope_core::{
        DatagramParser, DatagramParserFactory, FlowSide, L4Proto, ParserContext, SessionEvent,
        Timestamp,
    };
    use serde_json::json;

    use super::*;
    use crate::proto::dns::DnsDatagramFactory;

    fn decode(wire: &[u8]) -> DnsMessage {
        let f = DnsDatagramFactory::default();
        let mut p = f.new_parser(&ParserContext::new(L4Proto::Udp, 40000, 53));
        let mut got = None;
        p.on_datagram(FlowSide::Responder, wire, Timestamp::ZERO, &mut |e| {
            if let SessionEvent::Message(m) = e {
                got = Some(m);
            }
        });
        got.unwrap()
    }

    fn wname(n: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in n.split('.') {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    fn rr(t: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        // Owner: pointer to the question name at offset 12.
        let mut v = vec![0xc0, 0x0c];
        v.extend_from_slice(&t.to_be_bytes());
        v.extend_from_slice(&[0, 1]);
        v.extend_from_slice(&ttl.to_be_bytes());
        v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        v.extend_from_slice(rdata);
        v
    }

    #[test]
    fn request_matches_suricata_8_example() {
        // The 8.0 upgrade notes' request: id 0, flags "100", rd, opcode 0,
        // rcode NOERROR, queries [{www.suricata.io, A}].
        let mut m = vec![0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend(wname("www.suricata.io"));
        m.extend_from_slice(&[0, 1, 0, 1]);
        let v = eve_dns(&decode(&m));
        assert_eq!(
            v,
            json!({
                "version": 3, "type": "request", "id": 0, "flags": "100", "rd": true,
                "opcode": 0, "rcode": "NOERROR",
                "queries": [{ "rrname": "www.suricata.io", "rrtype": "A" }]
            })
        );
    }

    #[test]
    fn response_matches_suricata_8_example() {
        // The 8.0 upgrade notes' response: flags "8180", a CNAME then an A.
        let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend(wname("www.suricata.io"));
        m.extend_from_slice(&[0, 1, 0, 1]);
        // CNAME suricata.io = pointer to offset 16 ("suricata.io" inside the qname).
        m.extend(rr(5, 3597, &[0xc0, 16]));
        let mut a = vec![0xc0, 16, 0, 1, 0, 1];
        a.extend_from_slice(&597u32.to_be_bytes());
        a.extend_from_slice(&[0, 4, 35, 212, 0, 44]);
        m.extend(a);
        let v = eve_dns(&decode(&m));
        assert_eq!(
            v,
            json!({
                "version": 3, "type": "response", "id": 0, "flags": "8180",
                "qr": true, "rd": true, "ra": true, "opcode": 0, "rcode": "NOERROR",
                "queries": [{ "rrname": "www.suricata.io", "rrtype": "A" }],
                "answers": [
                    { "rrname": "www.suricata.io", "rrtype": "CNAME", "ttl": 3597, "rdata": "suricata.io" },
                    { "rrname": "suricata.io", "rrtype": "A", "ttl": 597, "rdata": "35.212.0.44" }
                ]
            })
        );
    }

    #[test]
    fn sections_rdata_shapes_and_grouped() {
        // NXDOMAIN-style response with AAAA, TXT (2 strings), SRV, an unknown
        // type in answers, SOA in authorities, OPT with a cookie in additionals.
        let mut m = vec![0x12, 0x34, 0x85, 0x83, 0, 1, 0, 4, 0, 1, 0, 1];
        m.extend(wname("ex.org"));
        m.extend_from_slice(&[0, 28, 0, 1]);
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[15] = 1;
        m.extend(rr(28, 5, &v6));
        m.extend(rr(16, 5, &[1, b'a', 2, b'b', 0x01]));
        m.extend(rr(33, 5, &[0, 1, 0, 2, 0, 80, 0]));
        m.extend(rr(4242, 5, &[9]));
        let mut soa = vec![0xc0, 0x0c, 0xc0, 0x0c];
        for n in [1u32, 2, 3, 4, 5] {
            soa.extend_from_slice(&n.to_be_bytes());
        }
        m.extend(rr(6, 7, &soa));
        m.extend_from_slice(&[
            0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 6, 0, 10, 0, 2, 0xab, 0xcd,
        ]);
        let msg = decode(&m);
        let v = eve_dns_with(
            &msg,
            EveDnsFormats {
                detailed: true,
                grouped: true,
            },
        );
        // 0x8583: QR, AA, RD, RA, RCODE 3.
        assert_eq!(v["flags"], "8583");
        assert_eq!(v["aa"], true);
        assert!(v.get("tc").is_none() && v.get("z").is_none());
        assert_eq!(v["rcode"], "NXDOMAIN");
        assert_eq!(v["queries"][0]["rrtype"], "AAAA");
        let ans = v["answers"].as_array().unwrap();
        // Suricata's AAAA form: eight zero-padded groups.
        assert_eq!(ans[0]["rdata"], "2001:0000:0000:0000:0000:0000:0000:0001");
        // One entry per TXT string; a control byte escaped.
        assert_eq!(ans[1]["rdata"], "a");
        assert_eq!(ans[2]["rdata"], "b\\x01");
        assert_eq!(
            ans[3]["srv"],
            json!({ "priority": 1, "weight": 2, "port": 80, "name": "" })
        );
        // Unknown type: number as rrtype, no rdata.
        assert_eq!(
            ans[4],
            json!({ "rrname": "ex.org", "rrtype": "4242", "ttl": 5 })
        );
        assert_eq!(v["authorities"][0]["soa"]["mname"], "ex.org");
        assert_eq!(v["authorities"][0]["soa"]["minimum"], 5);
        assert_eq!(
            v["additionals"][0],
            json!({ "rrname": "", "rrtype": "OPT", "ttl": 0, "opt": [{ "code": 10, "data": "abcd" }] })
        );
        assert_eq!(
            v["grouped"]["AAAA"],
            json!(["2001:0000:0000:0000:0000:0000:0000:0001"])
        );
        assert_eq!(v["grouped"]["TXT"], json!(["a", "b\\x01"]));
    }

    #[test]
    fn matches_the_schema_keys() {
        // Every key produced must be one the schema's `dns` object allows
        // (additionalProperties is false there); read the schema when present.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/suricata-eve.schema.json"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("SKIP: schema not found");
            return;
        };
        let schema: Value = serde_json::from_str(&text).unwrap();
        let allowed = schema["properties"]["dns"]["properties"]
            .as_object()
            .unwrap();
        let mut m = vec![0, 1, 0x83, 0xc0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend(wname("a.b"));
        m.extend_from_slice(&[0, 1, 0, 1]);
        let v = eve_dns_with(
            &decode(&m),
            EveDnsFormats {
                detailed: true,
                grouped: true,
            },
        );
        for k in v.as_object().unwrap().keys() {
            assert!(allowed.contains_key(k), "{k} not in schema");
        }
        assert_eq!(v["z"], true);
        assert_eq!(v["tc"], true);
    }

    #[test]
    fn a_question_with_a_broken_name_is_not_logged() {
        // QNAME "ab" then 0x42, an extended label type (RFC 6891 §5 retires
        // them): the header is logged, the question is not.
        let mut m = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[2, b'a', b'b', 0x42, 0, 1, 0, 1]);
        let d = decode(&m);
        assert_eq!(d.questions.len(), 1);
        let v = eve_dns(&d);
        assert_eq!(v["id"], 7);
        assert!(v.get("queries").is_none(), "{v}");
    }
}

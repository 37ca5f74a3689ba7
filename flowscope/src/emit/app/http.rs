//! HTTP transactions as Suricata's EVE `http` object.
//!
//! Field for field what Suricata's `output-json-http.c` writes with its
//! default `extended: yes` (`EveHttpLogJSONBasic` + `EveHttpLogJSONExtended`),
//! names and types as in Suricata's `etc/schema.json`; fields Suricata
//! omits when the message lacks them are omitted too. Not written:
//! `http_request_body*` / `http_response_body*` (bodies are never kept) and
//! the HTTP/2 fields.

use serde_json::{json, Map, Value};

use crate::proto::http::HttpTransaction;

/// Suricata's cap on a logged header name, in bytes (`MAX_SIZE_HEADER_NAME - 1`).
const MAX_HEADER_NAME: usize = 255;
/// Suricata's cap on a logged header value, in bytes (`MAX_SIZE_HEADER_VALUE - 1`).
const MAX_HEADER_VALUE: usize = 2047;

/// The EVE `http` object of one transaction (Suricata's default fields).
///
/// `responder_port` is the flow's server port. Suricata's `http_port` is
/// only ever the port named in the request's Host header or absolute URI
/// ("no connection between this port and the TCP destination port", in
/// its source), so the flow's port is not written; the parameter lets the
/// caller's signature stay the same when fields that need it are added.
pub fn eve_http(tx: &HttpTransaction, responder_port: u16) -> Value {
    eve_http_with(tx, responder_port, false)
}

/// [`eve_http`], plus `request_headers` / `response_headers` as
/// `[{name, value}]` when `all_headers` (Suricata's
/// `dump-all-headers: both`). Only the headers the parser kept are listed.
pub fn eve_http_with(tx: &HttpTransaction, _responder_port: u16, all_headers: bool) -> Value {
    let mut o = Map::new();
    let req = tx.request.as_ref();
    let resp = tx.response.as_ref();
    // Basic fields.
    if let Some(q) = req {
        let authority = uri_authority(&q.uri).or(q.host.as_deref());
        if let Some((host, port)) = authority.map(split_host_port) {
            if !host.is_empty() {
                o.insert("hostname".into(), normalize_host(host).into());
            }
            if let Some(p) = port {
                o.insert("http_port".into(), p.into());
            }
        }
        o.insert("url".into(), q.uri.clone().into());
        put(&mut o, "http_user_agent", q.user_agent.as_deref());
        put(&mut o, "xff", q.xff.as_deref());
    }
    if let Some(s) = resp {
        if let Some(ct) = &s.content_type {
            // Suricata cuts the media type at the first ';'.
            let media = ct.split(';').next().unwrap_or("");
            o.insert("http_content_type".into(), media.into());
        }
        if let Some((_, raw)) = s
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-range"))
        {
            o.insert("content_range".into(), content_range(raw));
        }
    }
    // Extended fields.
    if let Some(q) = req {
        put(&mut o, "http_refer", q.referer.as_deref());
        o.insert("http_method".into(), q.method.clone().into());
        o.insert("protocol".into(), q.version.clone().into());
    }
    if let Some(s) = resp {
        if s.status > 0 {
            o.insert("status".into(), s.status.into());
        } else {
            o.insert("status_string".into(), format!("{:03}", s.status).into());
        }
        put(&mut o, "redirect", s.location.as_deref());
    }
    o.insert("length".into(), resp.map_or(0, |s| s.body_len).into());
    if all_headers {
        if let Some(q) = req.filter(|q| !q.headers.is_empty()) {
            o.insert("request_headers".into(), header_list(&q.headers));
        }
        if let Some(s) = resp.filter(|s| !s.headers.is_empty()) {
            o.insert("response_headers".into(), header_list(&s.headers));
        }
    }
    Value::Object(o)
}

fn put(o: &mut Map<String, Value>, key: &str, v: Option<&str>) {
    if let Some(v) = v {
        o.insert(key.into(), v.into());
    }
}

fn header_list(headers: &[(String, String)]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(n, v)| json!({"name": cut(n, MAX_HEADER_NAME), "value": cut(v, MAX_HEADER_VALUE)}))
            .collect(),
    )
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// The authority of an absolute-form target (`http://host:port/path`).
fn uri_authority(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = rest.get(..end)?;
    // Drop userinfo.
    Some(auth.rsplit_once('@').map_or(auth, |(_, h)| h))
}

/// Host and port of `host[:port]` or `[v6]:port`; the port only when it
/// is a valid one.
fn split_host_port(s: &str) -> (&str, Option<u16>) {
    let s = s.trim();
    if s.starts_with('[') {
        if let Some(close) = s.find(']') {
            let host = s.get(..=close).unwrap_or(s);
            let port = s.get(close + 1..).and_then(|r| r.strip_prefix(':'));
            return (host, port.and_then(|p| p.parse().ok()));
        }
        return (s, None);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (s, None),
    }
}

/// libhtp's hostname normalisation: lower case, no trailing dots.
fn normalize_host(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// Suricata's `content_range` object: `raw`, and `start`/`end`/`size` when
/// the value is `bytes start-end/size` (`*` parts left out).
fn content_range(raw: &str) -> Value {
    let mut o = Map::new();
    o.insert("raw".into(), raw.into());
    let v = raw.trim();
    let v = v.strip_prefix("bytes").map_or(v, str::trim_start);
    if let Some((range, size)) = v.split_once('/') {
        if let Some((a, b)) = range.trim().split_once('-') {
            if let (Ok(a), Ok(b)) = (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
                o.insert("start".into(), a.into());
                o.insert("end".into(), b.into());
            }
        }
        if let Ok(n) = size.trim().parse::<u64>() {
            o.insert("size".into(), n.into());
        }
    }
    Value::Object(o)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::proto::http::{HttpParser, HttpTransaction};
    use flowscope_core::{FlowSide, SessionEvent, SessionParser, Timestamp};

    /// Transactions from a conversation, through the real parser.
    fn parse(conv: &[(FlowSide, &[u8])]) -> Vec<HttpTransaction> {
        let mut p = HttpParser::default();
        let mut out = Vec::new();
        let mut sink = |e: SessionEvent<HttpTransaction>| {
            if let SessionEvent::Message(m) = e {
                out.push(m);
            }
        };
        for (side, d) in conv {
            p.on_data(*side, d, Timestamp::ZERO, &mut sink);
        }
        p.on_close(Timestamp::ZERO, &mut sink);
        out
    }

    fn sample() -> HttpTransaction {
        parse(&[
            (
                FlowSide::Initiator,
                b"GET /index.html HTTP/1.1\r\nHost: WWW.Example.COM.:8080\r\nUser-Agent: curl/8.0\r\nReferer: http://a/\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
            ),
            (
                FlowSide::Responder,
                b"HTTP/1.1 206 Partial Content\r\nContent-Type: text/html; charset=UTF-8\r\nLocation: /x\r\nContent-Range: bytes 0-3/10\r\nContent-Length: 4\r\n\r\nabcd",
            ),
        ])
        .remove(0)
    }

    #[test]
    fn default_fields_as_suricata_writes_them() {
        let v = eve_http(&sample(), 8080);
        let expected = json!({
            "hostname": "www.example.com",
            "http_port": 8080,
            "url": "/index.html",
            "http_user_agent": "curl/8.0",
            "xff": "1.2.3.4",
            "http_content_type": "text/html",
            "content_range": {"raw": "bytes 0-3/10", "start": 0, "end": 3, "size": 10},
            "http_refer": "http://a/",
            "http_method": "GET",
            "protocol": "HTTP/1.1",
            "status": 206,
            "redirect": "/x",
            "length": 4
        });
        assert_eq!(v, expected);
    }

    #[test]
    fn absent_fields_are_omitted() {
        let tx = parse(&[(FlowSide::Initiator, b"GET / HTTP/1.0\r\n\r\n")]).remove(0);
        let v = eve_http(&tx, 80);
        // No Host, no response: Suricata writes url, method, protocol, length.
        assert_eq!(
            v,
            json!({"url": "/", "http_method": "GET", "protocol": "HTTP/1.0", "length": 0})
        );
        let tx = parse(&[(
            FlowSide::Responder,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        )])
        .remove(0);
        assert_eq!(eve_http(&tx, 80), json!({"status": 404, "length": 0}));
    }

    #[test]
    fn hostname_from_absolute_uri_and_ipv6() {
        let tx = parse(&[(
            FlowSide::Initiator,
            b"GET http://user@Proxy.Test:3128/p HTTP/1.1\r\nHost: other\r\n\r\n",
        )])
        .remove(0);
        let v = eve_http(&tx, 3128);
        assert_eq!(v["hostname"], "proxy.test");
        assert_eq!(v["http_port"], 3128);
        assert_eq!(split_host_port("[::1]:8080"), ("[::1]", Some(8080)));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("h:99999"), ("h", None));
    }

    #[test]
    fn header_dump_and_caps() {
        assert_eq!(cut("héllo", 2), "h");
        let v = eve_http_with(&sample(), 8080, true);
        let req = v["request_headers"].as_array().unwrap();
        assert_eq!(
            req[0],
            json!({"name": "Host", "value": "WWW.Example.COM.:8080"})
        );
        assert_eq!(v["response_headers"].as_array().unwrap().len(), 4);
    }

    /// Every key and type against the `http` definition of Suricata's
    /// schema, when the shared copy is at hand.
    #[test]
    fn validates_against_suricata_schema() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/suricata-eve.schema.json"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("SKIP: {path} not found");
            return;
        };
        let schema: Value = serde_json::from_str(&text).unwrap();
        let props = &schema["properties"]["http"]["properties"];
        let v = eve_http_with(&sample(), 8080, true);
        check(&v, &schema["properties"]["http"]);
        assert!(v
            .as_object()
            .unwrap()
            .keys()
            .all(|k| props.get(k).is_some()));
    }

    /// A small JSON-schema subset: type, properties with
    /// additionalProperties false, items, minItems.
    fn check(v: &Value, s: &Value) {
        let ty = s["type"].as_str().unwrap_or("");
        let ok = match ty {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            _ => true,
        };
        assert!(ok, "{v} is not {ty}");
        if let Some(o) = v.as_object() {
            for (k, x) in o {
                let sub = &s["properties"][k];
                assert!(
                    !sub.is_null() || s["additionalProperties"] != false,
                    "unknown key {k}"
                );
                check(x, sub);
            }
        }
        if let Some(a) = v.as_array() {
            if let Some(min) = s["minItems"].as_u64() {
                assert!(a.len() as u64 >= min);
            }
            for x in a {
                check(x, &s["items"]);
            }
        }
    }
}

//! Parser tests on hand-built conversations. Expected values come from the
//! messages themselves (lengths counted in the literals) and the RFC 9110 /
//! 9112 rules cited at each test.

use flowscope_core::{
    FlowSide, L4Proto, ParserContext, Probe, SessionEvent, SessionParser, SessionParserFactory,
    Timestamp,
};
use proptest::prelude::*;

use super::*;

const I: FlowSide = FlowSide::Initiator;
const R: FlowSide = FlowSide::Responder;

/// What a run produced.
#[derive(Debug, Default)]
struct Run {
    txs: Vec<HttpTransaction>,
    anomalies: Vec<&'static str>,
    closed: usize,
    poisoned: bool,
}

fn feed(p: &mut HttpParser, run: &mut Run, steps: &[(FlowSide, &[u8])]) {
    for (k, (side, data)) in steps.iter().enumerate() {
        let ts = Timestamp::from_secs_nanos(k as u64 + 1, 0);
        p.on_data(*side, data, ts, &mut |ev| collect(run, ev));
    }
    run.poisoned = p.is_poisoned();
}

fn collect(run: &mut Run, ev: SessionEvent<HttpTransaction>) {
    match ev {
        SessionEvent::Message(m) => run.txs.push(m),
        SessionEvent::Anomaly { anomaly, .. } => run.anomalies.push(anomaly.code),
        SessionEvent::Closed => run.closed += 1,
        _ => {}
    }
}

fn close(p: &mut HttpParser, run: &mut Run) {
    p.on_close(Timestamp::from_secs_nanos(999, 0), &mut |ev| {
        collect(run, ev)
    });
}

/// Feeds `steps` then closes.
fn run(steps: &[(FlowSide, &[u8])]) -> Run {
    let mut p = HttpParser::default();
    let mut r = Run::default();
    feed(&mut p, &mut r, steps);
    close(&mut p, &mut r);
    r
}

fn req(tx: &HttpTransaction) -> &HttpRequest {
    tx.request.as_ref().expect("request")
}
fn resp(tx: &HttpTransaction) -> &HttpResponse {
    tx.response.as_ref().expect("response")
}

#[test]
fn simple_get_fields() {
    let r = run(&[
        (
            I,
            b"GET /a?b=1 HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: curl/8\r\nReferer: http://r/\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
        ),
        (
            R,
            b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello",
        ),
    ]);
    assert_eq!(r.txs.len(), 1);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    let q = req(&r.txs[0]);
    assert_eq!(q.method, "GET");
    assert_eq!(q.uri, "/a?b=1");
    assert_eq!(q.version, "HTTP/1.1");
    assert_eq!(q.host.as_deref(), Some("Example.com:8080"));
    assert_eq!(q.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(q.referer.as_deref(), Some("http://r/"));
    assert_eq!(q.xff.as_deref(), Some("10.0.0.1"));
    assert_eq!(q.headers.len(), 4);
    assert_eq!(q.ts, Timestamp::from_secs_nanos(1, 0));
    let s = resp(&r.txs[0]);
    assert_eq!((s.status, s.reason.as_str()), (302, "Found"));
    assert_eq!(s.location.as_deref(), Some("/b"));
    assert_eq!(s.content_type.as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!((s.content_length, s.body_len), (Some(5), 5));
    assert_eq!(s.ts, Timestamp::from_secs_nanos(2, 0));
    assert_eq!(r.closed, 0); // the driver, not the parser, reports Closed
}

#[test]
fn pipelined_requests_pair_in_order() {
    // RFC 9112 §9.3.2: responses to pipelined requests come in request order.
    let r = run(&[
        (I, b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: h\r\n\r\n"),
        (
            R,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        ),
    ]);
    let got: Vec<(&str, u16, u64)> = r
        .txs
        .iter()
        .map(|t| (req(t).uri.as_str(), resp(t).status, resp(t).body_len))
        .collect();
    // HEAD: the Content-Length describes the GET body, none follows (§6.3 rule 1).
    assert_eq!(got, vec![("/1", 200, 1), ("/2", 404, 0), ("/3", 200, 0)]);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

const CHUNKED_CONVERSATION: &[(FlowSide, &[u8])] = &[
    (
        I,
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n",
    ),
    (
        R,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    ),
];

#[test]
fn chunked_bodies_with_extensions_and_trailers() {
    let r = run(CHUNKED_CONVERSATION);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(r.txs.len(), 2);
    let q = req(&r.txs[0]);
    assert!(q.chunked);
    assert_eq!(q.body_len, 3);
    let s = resp(&r.txs[0]);
    // 0x1a + 0x10 = 26 + 16 decoded bytes.
    assert_eq!(s.body_len, 42);
    assert_eq!(s.transfer_encoding.as_deref(), Some("gzip, chunked"));
    assert_eq!(req(&r.txs[1]).uri, "/next");
    assert_eq!(resp(&r.txs[1]).status, 204);
}

#[test]
fn byte_by_byte_gives_the_same_transactions() {
    let whole = run(CHUNKED_CONVERSATION);
    let mut p = HttpParser::default();
    let mut r = Run::default();
    for (side, data) in CHUNKED_CONVERSATION {
        for b in data.iter() {
            feed(&mut p, &mut r, &[(*side, std::slice::from_ref(b))]);
        }
    }
    close(&mut p, &mut r);
    let strip = |txs: &[HttpTransaction]| -> Vec<(String, u64, u16, u64)> {
        txs.iter()
            .map(|t| {
                (
                    req(t).uri.clone(),
                    req(t).body_len,
                    resp(t).status,
                    resp(t).body_len,
                )
            })
            .collect()
    };
    assert_eq!(strip(&r.txs), strip(&whole.txs));
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn continue_100_does_not_consume_the_request() {
    // RFC 9110 §15.2: a 1xx is interim; the final response answers the same request.
    let r = run(&[
        (
            I,
            b"POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        ),
        (R, b"HTTP/1.1 100 Continue\r\n\r\n"),
        (I, b"data"),
        (
            R,
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        ),
    ]);
    assert_eq!(r.txs.len(), 1);
    assert_eq!(req(&r.txs[0]).body_len, 4);
    assert_eq!(resp(&r.txs[0]).status, 201);
    assert_eq!(resp(&r.txs[0]).interim, vec![100, 102]);
}

#[test]
fn not_modified_and_no_content_have_no_body() {
    // RFC 9112 §6.3 rule 1: 1xx, 204 and 304 end at the header block.
    let r = run(&[
        (I, b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
        (
            R,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
    ]);
    let st: Vec<u16> = r.txs.iter().map(|t| resp(t).status).collect();
    assert_eq!(st, vec![304, 204, 200]);
    assert_eq!(resp(&r.txs[2]).body_len, 2);
}

#[test]
fn upgrade_101_stops_parsing_without_poison() {
    let mut p = HttpParser::default();
    let mut r = Run::default();
    feed(
        &mut p,
        &mut r,
        &[
            (
                I,
                b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            ),
            (
                R,
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
            ),
            (I, b"\x81\x85\x00\x00\x00\x00hello"),
            (R, b"garbage that is not http"),
        ],
    );
    assert!(p.is_tunnel());
    assert!(!r.poisoned);
    assert_eq!(r.txs.len(), 1);
    assert_eq!(resp(&r.txs[0]).status, 101);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    close(&mut p, &mut r);
    assert_eq!(r.txs.len(), 1);
    assert_eq!(r.closed, 0); // the driver, not the parser, reports Closed
}

#[test]
fn connect_tunnel_with_early_client_bytes() {
    // The client may send TLS before the proxy's 200 arrives.
    let mut p = HttpParser::default();
    let mut r = Run::default();
    feed(
        &mut p,
        &mut r,
        &[
            (I, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x02\x00\x01"),
            (R, b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03"),
        ],
    );
    assert!(p.is_tunnel() && !r.poisoned);
    assert_eq!(r.txs.len(), 1);
    assert_eq!(req(&r.txs[0]).method, "CONNECT");
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn refused_connect_keeps_parsing() {
    let r = run(&[
        (I, b"CONNECT h:443 HTTP/1.1\r\n\r\n"),
        (
            R,
            b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            I,
            b"CONNECT h:443 HTTP/1.1\r\nProxy-Authorization: Basic eA==\r\n\r\n",
        ),
        (R, b"HTTP/1.1 200 OK\r\n\r\n"),
    ]);
    let st: Vec<u16> = r.txs.iter().map(|t| resp(t).status).collect();
    assert_eq!(st, vec![407, 200]);
}

#[test]
fn response_without_request_and_request_without_response() {
    let r = run(&[
        (R, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
        (I, b"GET /late HTTP/1.0\r\n\r\n"),
    ]);
    assert_eq!(r.txs.len(), 2);
    assert!(r.txs[0].request.is_none());
    assert_eq!(resp(&r.txs[0]).version, "HTTP/1.0");
    assert_eq!(r.anomalies, vec!["http.unsolicited_response"]);
    // The unanswered one comes out at close, before Closed.
    assert!(r.txs[1].response.is_none());
    assert_eq!(req(&r.txs[1]).uri, "/late");
    assert_eq!(r.closed, 0); // the driver, not the parser, reports Closed
}

#[test]
fn read_until_close_body() {
    // RFC 9112 §6.3 rule 8: no length, not chunked: the body ends at close.
    let mut p = HttpParser::default();
    let mut r = Run::default();
    feed(
        &mut p,
        &mut r,
        &[
            (I, b"GET / HTTP/1.0\r\n\r\n"),
            (R, b"HTTP/1.0 200 OK\r\n\r\nabc"),
            (R, b"defg"),
        ],
    );
    assert!(r.txs.is_empty());
    close(&mut p, &mut r);
    assert_eq!(r.txs.len(), 1);
    assert_eq!(resp(&r.txs[0]).body_len, 7);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn ambiguous_and_duplicate_lengths_are_reported() {
    // RFC 9112 §6.3 rule 3: Transfer-Encoding overrides Content-Length.
    let r = run(&[
        (I, b"POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET /b HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"),
        (R, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc"),
    ]);
    assert_eq!(
        r.anomalies,
        vec!["http.ambiguous_framing", "http.duplicate_content_length"]
    );
    assert_eq!(r.txs.len(), 2);
    assert_eq!(req(&r.txs[0]).body_len, 1);
    assert_eq!(req(&r.txs[1]).content_length, Some(1));
    assert_eq!(resp(&r.txs[1]).body_len, 3);
}

#[test]
fn header_block_over_the_limit_poisons() {
    let cfg = HttpConfig {
        max_header_bytes: 64,
        ..HttpConfig::default()
    };
    let mut p = HttpParser::new(cfg);
    let mut r = Run::default();
    feed(
        &mut p,
        &mut r,
        &[
            (I, b"GET / HTTP/1.1\r\n\r\n"),
            (I, b"GET /x HTTP/1.1\r\nCookie: "),
            (I, &[b'a'; 100]),
        ],
    );
    assert!(r.poisoned);
    assert_eq!(r.anomalies, vec!["http.header_too_long"]);
    // What was pending is not lost.
    assert_eq!(r.txs.len(), 1);
    assert_eq!(req(&r.txs[0]).uri, "/");
    feed(&mut p, &mut r, &[(R, b"HTTP/1.1 200 OK\r\n\r\n")]);
    assert_eq!(r.txs.len(), 1);
}

#[test]
fn invalid_request_loses_that_side_only() {
    let mut p = HttpParser::default();
    let mut r = Run::default();
    feed(
        &mut p,
        &mut r,
        &[
            (I, b"GET /ok HTTP/1.1\r\n\r\n\x16\x03\x01 not http\r\n\r\n"),
            (R, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        ],
    );
    assert!(!r.poisoned);
    assert_eq!(
        r.anomalies,
        vec!["http.invalid_request_line", "http.unsolicited_response"]
    );
    assert_eq!(req(&r.txs[0]).uri, "/ok");
    assert!(r.txs[1].request.is_none());
    assert_eq!(resp(&r.txs[1]).status, 400);
    feed(&mut p, &mut r, &[(R, b"\x00\x01")]);
    assert!(
        !r.poisoned,
        "a response side that is not HTTP resynchronises"
    );
}

#[test]
fn malformed_request_lines_are_read_loosely() {
    // Zeek's methods.pcap: a truncated version, no version at all.
    let r = run(&[(
        I,
        b"GET / HTTP/1.\r\nHost: h\r\n\r\nOPTIONS\r\nHost: h\r\n\r\n",
    )]);
    let got: Vec<(&str, &str, &str)> = r
        .txs
        .iter()
        .map(|t| {
            (
                req(t).method.as_str(),
                req(t).uri.as_str(),
                req(t).version.as_str(),
            )
        })
        .collect();
    assert_eq!(got, vec![("GET", "/", "HTTP/1."), ("OPTIONS", "", "")]);
    assert_eq!(r.anomalies, vec!["http.invalid_request_line"; 2]);
}

#[test]
fn lenient_headers_are_reported() {
    // A space before the colon is invalid (RFC 9112 §5.1) but tolerated in
    // responses, with an anomaly.
    let r = run(&[
        (I, b"GET / HTTP/1.1\r\n\r\n"),
        (R, b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"),
    ]);
    assert!(
        r.anomalies.contains(&"http.invalid_header"),
        "{:?}",
        r.anomalies
    );
    assert_eq!(r.txs.len(), 1);
}

#[test]
fn gap_inside_body_is_counted_and_framing_continues() {
    let mut p = HttpParser::default();
    let mut r = Run::default();
    feed(
        &mut p,
        &mut r,
        &[
            (I, b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
            (R, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
        ],
    );
    p.on_gap(R, 5, Timestamp::ZERO, &mut |ev| collect(&mut r, ev));
    feed(
        &mut p,
        &mut r,
        &[(R, b"fghHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")],
    );
    assert!(!r.poisoned);
    assert_eq!(r.txs.len(), 2);
    assert_eq!(resp(&r.txs[0]).body_len, 10);
    assert_eq!(req(&r.txs[1]).uri, "/2");
}

#[test]
fn gap_in_request_headers_poisons() {
    let mut p = HttpParser::default();
    let mut r = Run::default();
    feed(&mut p, &mut r, &[(I, b"GET / HTTP/1.1\r\nHo")]);
    p.on_gap(I, 10, Timestamp::ZERO, &mut |ev| collect(&mut r, ev));
    assert!(p.is_poisoned());
    assert_eq!(r.anomalies, vec!["http.gap_in_headers"]);
}

#[test]
fn lost_response_head_resynchronises() {
    // Zeek's 1000-requests-one-dropped-response trace: a response head is
    // never captured, its body is.
    let mut p = HttpParser::default();
    let mut r = Run::default();
    feed(&mut p, &mut r, &[(I, b"GET /1 HTTP/1.1\r\n\r\n")]);
    p.on_gap(R, 40, Timestamp::ZERO, &mut |ev| collect(&mut r, ev));
    feed(
        &mut p,
        &mut r,
        &[
            (R, b"<html>\nbody\n</html>"),
            (I, b"GET /2 HTTP/1.1\r\n\r\n"),
            (R, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
    );
    assert!(!r.poisoned);
    assert_eq!(r.txs.len(), 2);
    assert_eq!(req(&r.txs[0]).uri, "/1");
    assert!(r.txs[0].response.is_none());
    assert_eq!(req(&r.txs[1]).uri, "/2");
    assert_eq!(resp(&r.txs[1]).status, 200);
    assert_eq!(r.anomalies, vec!["http.gap_in_headers"]);
}

#[test]
fn midstream_response_body_resynchronises() {
    // The capture starts inside a response body: skipped up to the next
    // status line; the request it answered comes out unanswered.
    let r = run(&[
        (I, b"GET /1 HTTP/1.1\r\n\r\n"),
        (
            R,
            b"tail of a body\nmore\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
    ]);
    assert_eq!(
        r.anomalies,
        vec!["http.invalid_status_line", "http.unsolicited_response"]
    );
    assert!(r.txs[0].response.is_none());
    assert!(r.txs[1].request.is_none());
    assert_eq!(resp(&r.txs[1]).status, 200);
}

#[test]
fn headers_kept_are_bounded() {
    let cfg = HttpConfig {
        max_headers_kept: 2,
        ..HttpConfig::default()
    };
    let mut p = HttpParser::new(cfg);
    let mut r = Run::default();
    feed(
        &mut p,
        &mut r,
        &[(
            I,
            b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nHost: h\r\n\r\n",
        )],
    );
    close(&mut p, &mut r);
    let q = req(&r.txs[0]);
    assert_eq!(
        q.headers,
        vec![("A".into(), "1".into()), ("B".into(), "2".into())]
    );
    // Fields past the kept ones are still read.
    assert_eq!(q.host.as_deref(), Some("h"));
}

#[test]
fn pending_queue_is_bounded() {
    let cfg = HttpConfig {
        max_pending_requests: 2,
        ..HttpConfig::default()
    };
    let mut p = HttpParser::new(cfg);
    let mut r = Run::default();
    feed(
        &mut p,
        &mut r,
        &[(
            I,
            b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n",
        )],
    );
    assert_eq!(p.pending_requests(), 2);
    assert_eq!(r.anomalies, vec!["http.too_many_pending"]);
    assert_eq!(req(&r.txs[0]).uri, "/1");
}

#[test]
fn probe_verdicts() {
    let f = HttpParserFactory::default();
    let ctx = ParserContext::new(L4Proto::Tcp, 50000, 9999);
    assert_eq!(f.name(), "http");
    assert_eq!(f.probe(&ctx, I, b"GET / HTTP/1.1\r\n"), Probe::Match);
    assert_eq!(f.probe(&ctx, I, b"PROPFIND /d HTTP/1.1"), Probe::Match);
    assert_eq!(f.probe(&ctx, I, b"M-SEARCH * HTTP/1.1"), Probe::Match);
    assert_eq!(f.probe(&ctx, I, b""), Probe::NeedMore);
    assert_eq!(f.probe(&ctx, I, b"PROP"), Probe::NeedMore);
    assert_eq!(f.probe(&ctx, I, b"GET"), Probe::NeedMore);
    // Extension methods (RFC 9110 §9.1) before an origin-, asterisk- or
    // absolute-form target (RFC 9112 §3.2).
    assert_eq!(f.probe(&ctx, I, b"GETX / HTTP/1.1"), Probe::Match);
    assert_eq!(f.probe(&ctx, I, b"CCM_POST /HTTP/1.1"), Probe::Match);
    assert_eq!(f.probe(&ctx, I, b"X-MS-ENUMATTS * HTTP/1.1"), Probe::Match);
    assert_eq!(f.probe(&ctx, I, b"FOO http://h/ HTTP/1.1"), Probe::Match);
    assert_eq!(f.probe(&ctx, I, b"FOO ht"), Probe::NeedMore);
    assert_eq!(f.probe(&ctx, I, b"CCM_POST "), Probe::NeedMore);
    assert_eq!(f.probe(&ctx, I, b"FOO rtsp://h/ RTSP/1.0"), Probe::NoMatch);
    assert_eq!(
        f.probe(&ctx, I, b"EHLO mail.example.com\r\n"),
        Probe::NoMatch
    );
    assert_eq!(f.probe(&ctx, I, b"USER anonymous\r\n"), Probe::NoMatch);
    assert_eq!(f.probe(&ctx, I, b"SSH-2.0-OpenSSH_9.6\r\n"), Probe::NoMatch);
    assert_eq!(
        f.probe(&ctx, I, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1"),
        Probe::NoMatch
    );
    assert_eq!(f.probe(&ctx, I, b"T /x HTTP/1.1"), Probe::NoMatch);
    assert_eq!(f.probe(&ctx, I, b"ET /x HTTP/1.1"), Probe::NoMatch);
    // A known method alone on its line: malformed, still an HTTP attempt.
    assert_eq!(f.probe(&ctx, I, b"OPTIONS\r\nHost: h\r\n"), Probe::Match);
    assert_eq!(f.probe(&ctx, I, b"OPTIONS\nHost: h\n"), Probe::Match);
    assert_eq!(f.probe(&ctx, I, b"OPTIONS"), Probe::NeedMore);
    assert_eq!(f.probe(&ctx, I, b"GETX\r\n"), Probe::NoMatch);
    assert_eq!(f.probe(&ctx, I, b"get / HTTP/1.1"), Probe::NoMatch);
    // CONNECT needs an authority target; NATS opens with `CONNECT {json}`.
    assert_eq!(f.probe(&ctx, I, b"CONNECT h:443 HTTP/1.1"), Probe::Match);
    assert_eq!(
        f.probe(&ctx, I, b"CONNECT [::1]:443 HTTP/1.1"),
        Probe::Match
    );
    assert_eq!(f.probe(&ctx, I, b"CONNECT "), Probe::NeedMore);
    assert_eq!(
        f.probe(&ctx, I, b"CONNECT {\"verbose\":false}"),
        Probe::NoMatch
    );
    assert_eq!(f.probe(&ctx, I, b"\x16\x03\x01"), Probe::NoMatch);
    assert_eq!(f.probe(&ctx, R, b"HTTP/1.1 200 OK"), Probe::Match);
    assert_eq!(f.probe(&ctx, R, b"HTTP/"), Probe::NeedMore);
    assert_eq!(f.probe(&ctx, R, b"HTTP/2 200"), Probe::NoMatch);
    assert_eq!(f.probe(&ctx, R, b"GET / HTTP/1.1"), Probe::NoMatch);
}

proptest! {
    /// Any bytes, any split, any gaps: no panic, buffers within the limit.
    #[test]
    fn arbitrary_input_never_panics(
        steps in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200), 0u64..50), 0..30),
        prefix in any::<bool>(),
    ) {
        let cfg = HttpConfig {
            max_header_bytes: 256,
            ..HttpConfig::default()
        };
        let mut p = HttpParser::new(cfg);
        let mut r = Run::default();
        if prefix {
            feed(&mut p, &mut r, &[(I, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), (R, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")]);
        }
        for (initiator, data, gap) in &steps {
            let side = if *initiator { I } else { R };
            feed(&mut p, &mut r, &[(side, data)]);
            if *gap > 40 {
                p.on_gap(side, *gap, Timestamp::ZERO, &mut |ev| collect(&mut r, ev));
            }
            prop_assert!(p.buffered_bytes() <= 2 * 256);
        }
        close(&mut p, &mut r);
        close(&mut p, &mut r);
        prop_assert_eq!(r.closed, 0); // the driver, not the parser, reports Closed
    }

    /// Splitting a valid conversation anywhere gives the same transactions.
    #[test]
    fn any_split_same_result(cuts in proptest::collection::vec(0usize..200, 0..6)) {
        let whole = run(CHUNKED_CONVERSATION);
        let mut p = HttpParser::default();
        let mut r = Run::default();
        for (side, data) in CHUNKED_CONVERSATION {
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            at.sort_unstable();
            let mut prev = 0;
            for c in at.into_iter().chain(std::iter::once(data.len())) {
                feed(&mut p, &mut r, &[(*side, &data[prev..c])]);
                prev = c;
            }
        }
        close(&mut p, &mut r);
        let key = |t: &HttpTransaction| (req(t).uri.clone(), req(t).body_len, resp(t).status, resp(t).body_len);
        prop_assert_eq!(r.txs.iter().map(key).collect::<Vec<_>>(), whole.txs.iter().map(key).collect::<Vec<_>>());
    }
}

#[test]
fn memory_used_counts_the_head_buffer_and_is_freed_at_close() {
    let mut p = HttpParser::default();
    let mut r = Run::default();
    assert_eq!(SessionParser::memory_used(&p), 0, "nothing allocated yet");
    // A head cut after 3 000 bytes is buffered whole (no CRLF CRLF yet).
    let mut head = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    head.resize(3000, b'a');
    feed(&mut p, &mut r, &[(FlowSide::Initiator, &head)]);
    assert!(SessionParser::memory_used(&p) >= 3000);
    close(&mut p, &mut r);
    assert_eq!(SessionParser::memory_used(&p), 0, "every buffer released");
}

//! One test per parser rule. Expected values come from the frame layout in
//! the crate docs (version, kind, big-endian u16 length, body), worked out
//! by hand in each test.

use flowscope_core::{Anomaly, FlowSide, SessionEvent, SessionParser, Timestamp};

use super::LenProtoParser;
use crate::anomalies;
use crate::config::LenProtoConfig;
use crate::message::{LenProtoMessage, MessageKind};

use FlowSide::{Initiator as I, Responder as R};

type Event = SessionEvent<LenProtoMessage>;

/// A version-1 frame.
fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).unwrap();
    let mut v = vec![1, kind];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

fn parser() -> LenProtoParser {
    LenProtoParser::new(LenProtoConfig::default())
}

fn feed(p: &mut LenProtoParser, side: FlowSide, data: &[u8], t: u64) -> Vec<Event> {
    let mut ev = Vec::new();
    p.on_data(side, data, ts(t), &mut |e| ev.push(e));
    ev
}

fn gap(p: &mut LenProtoParser, side: FlowSide, len: u64, t: u64) -> Vec<Event> {
    let mut ev = Vec::new();
    p.on_gap(side, len, ts(t), &mut |e| ev.push(e));
    ev
}

fn close(p: &mut LenProtoParser) -> Vec<Event> {
    let mut ev = Vec::new();
    p.on_close(ts(999), &mut |e| ev.push(e));
    ev
}

fn msg(side: FlowSide, t: u64, body_len: u16, kind: MessageKind) -> Event {
    SessionEvent::Message(LenProtoMessage {
        side,
        ts: ts(t),
        body_len,
        kind,
    })
}

fn hello(side: FlowSide, t: u64, name: &str) -> Event {
    let len = u16::try_from(name.len()).unwrap();
    msg(
        side,
        t,
        len,
        MessageKind::Hello {
            client_name: name.to_owned(),
        },
    )
}

fn anomaly(side: FlowSide, a: Anomaly) -> Event {
    SessionEvent::Anomaly {
        side: Some(side),
        anomaly: a,
    }
}

#[test]
fn several_frames_in_one_segment() {
    let mut p = parser();
    let mut bytes = frame(1, b"alice");
    bytes.extend(frame(2, &[9; 10]));
    bytes.extend(frame(3, b""));
    assert_eq!(
        feed(&mut p, I, &bytes, 5),
        vec![
            hello(I, 5, "alice"),
            msg(I, 5, 10, MessageKind::Data),
            msg(I, 5, 0, MessageKind::Bye),
        ]
    );
    assert_eq!(p.buffered_bytes(), 0);
    assert!(!p.is_poisoned());
}

#[test]
fn frame_split_byte_by_byte_takes_the_last_bytes_time() {
    let mut p = parser();
    let bytes = frame(1, b"bob");
    let mut events = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        events.extend(feed(&mut p, I, &[*b], 100 + i as u64));
    }
    // 4 header bytes + 3 body bytes: the last one is fed at 100 + 6.
    assert_eq!(events, vec![hello(I, 106, "bob")]);
}

#[test]
fn header_split_across_segments() {
    let mut p = parser();
    feed(&mut p, I, &frame(1, b"")[..], 1);
    // A data header cut after 3 bytes: 0x01 0x02 0x00 | 0x05, body 5 bytes.
    assert_eq!(feed(&mut p, I, &[1, 2, 0], 2), vec![]);
    assert_eq!(p.buffered_bytes(), 3);
    assert_eq!(feed(&mut p, I, &[5, 0, 0], 3), vec![]);
    assert_eq!(
        feed(&mut p, I, &[0, 0, 0], 4),
        vec![msg(I, 4, 5, MessageKind::Data)]
    );
}

#[test]
fn segment_ending_mid_frame_keeps_the_rest_for_later() {
    let mut p = parser();
    let mut bytes = frame(1, b"carol");
    bytes.extend(frame(2, &[7; 6]));
    // 9 bytes of hello + 4 of the 10-byte data frame.
    let (a, b) = bytes.split_at(13);
    assert_eq!(feed(&mut p, I, a, 1), vec![hello(I, 1, "carol")]);
    assert_eq!(feed(&mut p, I, b, 2), vec![msg(I, 2, 6, MessageKind::Data)]);
}

#[test]
fn empty_body_completes_with_its_header() {
    let mut p = parser();
    feed(&mut p, I, &frame(1, b"x"), 1);
    assert_eq!(
        feed(&mut p, I, &[1, 2, 0, 0], 2),
        vec![msg(I, 2, 0, MessageKind::Data)]
    );
}

#[test]
fn body_at_the_limit_is_accepted() {
    let mut p = LenProtoParser::new(LenProtoConfig::default().with_max_body(16));
    let name = "0123456789abcdef"; // 16 bytes
    assert_eq!(
        feed(&mut p, I, &frame(1, name.as_bytes()), 1),
        vec![hello(I, 1, name)]
    );
    assert!(!p.is_poisoned());
}

#[test]
fn body_past_the_limit_poisons_before_buffering() {
    let mut p = LenProtoParser::new(LenProtoConfig::default().with_max_body(16));
    feed(&mut p, I, &frame(1, b"a"), 1);
    // A data header declaring 17 bytes: 0x01 0x02 0x00 0x11.
    assert_eq!(
        feed(&mut p, I, &[1, 2, 0, 17, 0, 0], 2),
        vec![anomaly(I, anomalies::FRAME_TOO_LONG)]
    );
    assert!(p.is_poisoned());
    assert_eq!(p.buffered_bytes(), 0);
}

#[test]
fn default_limit_is_4096() {
    let mut p = parser();
    // 0x10 0x01 = 4097.
    assert_eq!(
        feed(&mut p, I, &[1, 1, 0x10, 0x01], 1),
        vec![anomaly(I, anomalies::FRAME_TOO_LONG)]
    );
    let mut p = parser();
    // 0x10 0x00 = 4096 is fine; the hello body is then awaited.
    assert_eq!(feed(&mut p, I, &[1, 1, 0x10, 0x00], 1), vec![]);
    assert!(!p.is_poisoned());
}

#[test]
fn bad_version_poisons() {
    let mut p = parser();
    assert_eq!(
        feed(&mut p, I, &[2, 1, 0, 0], 1),
        vec![anomaly(I, anomalies::BAD_VERSION)]
    );
    assert!(p.is_poisoned());
}

#[test]
fn poisoned_parser_ignores_everything_after() {
    let mut p = parser();
    feed(&mut p, I, &[0, 0, 0, 0], 1);
    assert!(p.is_poisoned());
    assert_eq!(feed(&mut p, I, &frame(1, b"late"), 2), vec![]);
    assert_eq!(feed(&mut p, R, &frame(2, b"late"), 3), vec![]);
    assert_eq!(gap(&mut p, R, 5, 4), vec![]);
    assert_eq!(close(&mut p), vec![]);
}

#[test]
fn unknown_kind_is_skipped_by_length() {
    let mut p = parser();
    let mut bytes = frame(1, b"dan");
    // Kind 9 with a 3-byte body that looks like the start of a header.
    bytes.extend(frame(9, &[1, 1, 0]));
    bytes.extend(frame(3, b"z"));
    assert_eq!(
        feed(&mut p, I, &bytes, 1),
        vec![
            hello(I, 1, "dan"),
            anomaly(I, anomalies::UNKNOWN_KIND),
            msg(I, 1, 1, MessageKind::Bye),
        ]
    );
    assert!(!p.is_poisoned());
}

#[test]
fn sides_keep_their_own_state() {
    let mut p = parser();
    let hi = frame(1, b"erin");
    let data = frame(2, &[1, 2, 3, 4, 5, 6]);
    let (hi_a, hi_b) = hi.split_at(3);
    let (data_a, data_b) = data.split_at(5);
    // Both sides stop mid-frame and resume: neither sees the other's bytes.
    assert_eq!(feed(&mut p, I, hi_a, 1), vec![]);
    assert_eq!(feed(&mut p, R, data_a, 2), vec![]);
    assert_eq!(feed(&mut p, I, hi_b, 3), vec![hello(I, 3, "erin")]);
    assert_eq!(
        feed(&mut p, R, data_b, 4),
        vec![msg(R, 4, 6, MessageKind::Data)]
    );
}

#[test]
fn gap_at_a_frame_boundary_poisons() {
    let mut p = parser();
    feed(&mut p, I, &frame(1, b"f"), 1);
    assert_eq!(gap(&mut p, I, 10, 2), vec![anomaly(I, anomalies::GAP)]);
    assert!(p.is_poisoned());
}

#[test]
fn gap_inside_a_header_poisons() {
    let mut p = parser();
    feed(&mut p, I, &[1, 1], 1);
    assert_eq!(gap(&mut p, I, 1, 2), vec![anomaly(I, anomalies::GAP)]);
    assert!(p.is_poisoned());
    assert_eq!(p.buffered_bytes(), 0);
}

#[test]
fn gap_inside_a_hello_body_poisons() {
    let mut p = parser();
    feed(&mut p, I, &[1, 1, 0, 5, b'g'], 1);
    assert_eq!(gap(&mut p, I, 2, 2), vec![anomaly(I, anomalies::GAP)]);
    assert!(p.is_poisoned());
    assert_eq!(p.buffered_bytes(), 0, "poisoning frees the name buffer");
}

#[test]
fn gap_inside_a_data_body_keeps_the_framing() {
    let mut p = parser();
    feed(&mut p, I, &frame(1, b"h"), 1);
    // Data frame with a 10-byte body: 3 bytes seen, 4 lost, 3 seen.
    assert_eq!(feed(&mut p, I, &[1, 2, 0, 10, 0, 0, 0], 2), vec![]);
    assert_eq!(gap(&mut p, I, 4, 3), vec![]);
    assert!(!p.is_poisoned());
    let mut rest = vec![0, 0, 0];
    rest.extend(frame(3, b""));
    assert_eq!(
        feed(&mut p, I, &rest, 4),
        vec![
            msg(I, 4, 10, MessageKind::Data),
            msg(I, 4, 0, MessageKind::Bye)
        ]
    );
}

#[test]
fn gap_ending_exactly_at_the_body_end_completes_the_frame() {
    let mut p = parser();
    feed(&mut p, I, &frame(1, b"h"), 1);
    feed(&mut p, I, &[1, 2, 0, 10, 0], 2);
    // 9 body bytes left, all lost: the frame ends with the gap.
    assert_eq!(gap(&mut p, I, 9, 3), vec![msg(I, 3, 10, MessageKind::Data)]);
    assert_eq!(
        feed(&mut p, I, &frame(3, b""), 4),
        vec![msg(I, 4, 0, MessageKind::Bye)]
    );
}

#[test]
fn gap_past_the_body_end_poisons() {
    let mut p = parser();
    feed(&mut p, I, &frame(1, b"h"), 1);
    feed(&mut p, I, &[1, 2, 0, 10, 0], 2);
    // 9 body bytes left; 10 lost means the next header lost its first byte.
    assert_eq!(gap(&mut p, I, 10, 3), vec![anomaly(I, anomalies::GAP)]);
    assert!(p.is_poisoned());
}

#[test]
fn gap_on_one_side_is_reported_for_that_side() {
    let mut p = parser();
    assert_eq!(gap(&mut p, R, 1, 1), vec![anomaly(R, anomalies::GAP)]);
}

#[test]
fn empty_gap_is_nothing() {
    let mut p = parser();
    assert_eq!(gap(&mut p, I, 0, 1), vec![]);
    assert!(!p.is_poisoned());
}

#[test]
fn close_reports_unfinished_frames_per_side() {
    let mut p = parser();
    feed(&mut p, I, &frame(1, b"ivy"), 1);
    // Initiator: 2 header bytes. Responder: header and 1 of 4 body bytes.
    feed(&mut p, I, &[1, 2], 2);
    feed(&mut p, R, &[1, 2, 0, 4, 0], 3);
    assert_eq!(
        close(&mut p),
        vec![
            anomaly(I, anomalies::TRUNCATED),
            anomaly(R, anomalies::TRUNCATED)
        ]
    );
    assert_eq!(p.buffered_bytes(), 0);
    assert_eq!(close(&mut p), vec![], "reported once");
}

#[test]
fn close_between_frames_reports_nothing() {
    let mut p = parser();
    feed(&mut p, I, &frame(1, b"jo"), 1);
    feed(&mut p, R, &frame(2, b"ok"), 2);
    assert_eq!(close(&mut p), vec![]);
}

#[test]
fn close_inside_a_hello_body_reports_truncated() {
    let mut p = parser();
    feed(&mut p, I, &[1, 1, 0, 8, b'k'], 1);
    assert_eq!(close(&mut p), vec![anomaly(I, anomalies::TRUNCATED)]);
}

#[test]
fn session_must_open_with_the_initiators_hello() {
    let mut p = parser();
    assert_eq!(
        feed(&mut p, I, &frame(2, b"d"), 1),
        vec![
            anomaly(I, anomalies::MISSING_HELLO),
            msg(I, 1, 1, MessageKind::Data)
        ]
    );
    // Reported once, not for every later frame.
    assert_eq!(
        feed(&mut p, I, &frame(2, b"d"), 2),
        vec![msg(I, 2, 1, MessageKind::Data)]
    );
    assert!(!p.is_poisoned());
}

#[test]
fn responder_may_speak_first_without_a_hello() {
    let mut p = parser();
    assert_eq!(
        feed(&mut p, R, &frame(2, b""), 1),
        vec![msg(R, 1, 0, MessageKind::Data)]
    );
}

#[test]
fn hello_from_the_responder_or_twice_is_unexpected() {
    let mut p = parser();
    assert_eq!(
        feed(&mut p, R, &frame(1, b"srv"), 1),
        vec![anomaly(R, anomalies::UNEXPECTED_HELLO), hello(R, 1, "srv")]
    );
    assert_eq!(
        feed(&mut p, I, &frame(1, b"cli"), 2),
        vec![hello(I, 2, "cli")]
    );
    assert_eq!(
        feed(&mut p, I, &frame(1, b"cli2"), 3),
        vec![anomaly(I, anomalies::UNEXPECTED_HELLO), hello(I, 3, "cli2")]
    );
}

#[test]
fn non_utf8_name_is_reported_and_decoded_lossily() {
    let mut p = parser();
    // "a", then 0xFF (never valid in UTF-8, RFC 3629), then "b".
    assert_eq!(
        feed(&mut p, I, &frame(1, &[b'a', 0xFF, b'b']), 1),
        vec![
            anomaly(I, anomalies::BAD_CLIENT_NAME),
            msg(
                I,
                1,
                3,
                MessageKind::Hello {
                    client_name: "a\u{FFFD}b".to_owned()
                }
            )
        ]
    );
    assert!(!p.is_poisoned());
}

#[test]
fn multibyte_name_split_inside_a_character() {
    let mut p = parser();
    // "é" is 0xC3 0xA9; the split falls between the two bytes.
    feed(&mut p, I, &[1, 1, 0, 2, 0xC3], 1);
    assert_eq!(feed(&mut p, I, &[0xA9], 2), vec![hello(I, 2, "é")]);
}

#[test]
fn hello_buffer_is_reserved_exactly_and_released() {
    let max = 64u16;
    let mut p = LenProtoParser::new(LenProtoConfig::default().with_max_body(max));
    let name = [b'n'; 64];
    let bytes = frame(1, &name);
    for (i, b) in bytes.iter().enumerate() {
        feed(&mut p, I, &[*b], i as u64);
        assert!(p.initiator.name.capacity() <= usize::from(max));
        assert!(p.buffered_bytes() <= usize::from(max) + 3);
    }
    // The name moved into the message: nothing left behind.
    assert_eq!(p.initiator.name.capacity(), 0);
    assert_eq!(p.buffered_bytes(), 0);
}

#[test]
fn data_bodies_are_not_stored() {
    let mut p = parser();
    feed(&mut p, I, &frame(1, b"l"), 1);
    feed(&mut p, I, &[1, 2, 0x10, 0x00], 2);
    feed(&mut p, I, &[0; 4000], 3);
    // 96 of 4096 body bytes still to come, none of them held.
    assert_eq!(p.buffered_bytes(), 0);
}

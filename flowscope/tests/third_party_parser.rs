//! A parser crate that depends on flowscope-core alone (the LenProto
//! example in `docs/parser-example`) runs in the session driver, over TCP
//! segments that arrive out of order.

use std::net::Ipv4Addr;

use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver};
use flowscope_core::{FlowEvent, LinkType, PacketView, SessionEvent, Timestamp};
use flowscope_example_lenproto::{LenProtoFactory, LenProtoMessage, MessageKind};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

/// An Ethernet/IPv4/TCP frame (checksums left zero: not verified by default).
fn tcp_frame(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 20 + payload.len()) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ]);
    f.extend_from_slice(&src.0.octets());
    f.extend_from_slice(&dst.0.octets());
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![1, kind];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn lenproto_runs_in_the_driver() {
    let c = (Ipv4Addr::new(10, 0, 0, 1), 40000);
    let s = (Ipv4Addr::new(10, 0, 0, 2), 7777);
    let hello = frame(1, b"alice");
    let data = frame(2, &[9; 10]);
    let bye = frame(3, b"");
    let (ci, si) = (1000u32, 5000u32);
    let c1 = ci + 1;
    let c2 = c1 + hello.len() as u32;
    let c3 = c2 + data.len() as u32;
    let c4 = c3 + bye.len() as u32;
    let frames = [
        tcp_frame(c, s, ci, 0, SYN, &[]),
        tcp_frame(s, c, si, c1, SYN | ACK, &[]),
        tcp_frame(c, s, c1, si + 1, ACK, &[]),
        // The data frame overtakes the hello; the reassembler holds it.
        tcp_frame(c, s, c2, si + 1, ACK | PSH, &data),
        tcp_frame(c, s, c1, si + 1, ACK | PSH, &hello),
        tcp_frame(c, s, c3, si + 1, ACK | PSH | FIN, &bye),
        tcp_frame(s, c, si + 1, c4 + 1, ACK | FIN, &[]),
    ];

    let mut driver: SessionDriver<LenProtoMessage> = SessionDriver::new(SessionConfig::default());
    driver.add_stream_parser(LenProtoFactory::default());
    let mut kinds = Vec::new();
    let mut app = None;
    let mut closed = 0;
    let mut sink = |ev: DriverEvent<'_, LenProtoMessage>| match ev {
        DriverEvent::Session {
            event: SessionEvent::Message(m),
            ..
        } => kinds.push(m.kind),
        DriverEvent::Session {
            event: SessionEvent::Closed,
            ..
        } => closed += 1,
        DriverEvent::Flow {
            event: FlowEvent::Ended(_),
            app_proto,
        } => app = app_proto,
        _ => {}
    };
    for (i, f) in frames.iter().enumerate() {
        let pkt = PacketView::new(
            f,
            Timestamp::from_secs_nanos(100 + i as u64, 0),
            LinkType::ETHERNET,
        );
        driver.process(&pkt, &mut sink);
    }
    driver.finish(&mut sink);
    assert_eq!(
        kinds,
        vec![
            MessageKind::Hello {
                client_name: "alice".into()
            },
            MessageKind::Data,
            MessageKind::Bye
        ]
    );
    assert_eq!(closed, 1);
    assert_eq!(app, Some("lenproto"));
    assert!(driver.counters().is_balanced());
    assert_eq!(driver.session_counters().stream_parsers, 1);
}

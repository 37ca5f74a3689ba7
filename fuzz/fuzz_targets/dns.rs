//! The DNS parsers fed the same chunks two ways: each data chunk as one UDP
//! datagram (DnsDatagramFactory / DnsUdpParser) and all chunks as the two
//! byte streams of a TCP flow (DnsTcpFactory / DnsTcpParser, RFC 7766
//! framing), with gaps. Asserts: no message keeps more questions and
//! records than `max_records`, a TCP parser holds at most one maximal
//! framed message (2 + 65 535 bytes) per side, and the UDP parser's stats count
//! every message emitted.
#![no_main]

use flowscope::proto::dns::{DnsConfig, DnsDatagramFactory, DnsMessage, DnsTcpFactory};
use flowscope_core::{DatagramParser, DatagramParserFactory, L4Proto, ParserContext, SessionEvent};
use flowscope_fuzz::{run_stream, Chunk, Chunks, Input};
use libfuzzer_sys::fuzz_target;

fn check_message(m: &DnsMessage, cfg: &DnsConfig) {
    let kept = m.questions.len() + m.answers.len() + m.authorities.len() + m.additionals.len();
    assert!(kept <= cfg.max_records, "{kept} records kept");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let sel = input.u8();
    let cfg = if sel & 1 != 0 {
        DnsConfig::default().with_max_pending(2).with_max_records(8)
    } else {
        DnsConfig::default()
    };

    // UDP: one datagram per data chunk.
    let udp = DnsDatagramFactory::new(cfg);
    let ctx = ParserContext::new(L4Proto::Udp, 40000, 53);
    let mut parser = udp.new_parser(&ctx);
    let mut messages = 0u64;
    let mut emit = |ev: SessionEvent<DnsMessage>| {
        if let SessionEvent::Message(m) = ev {
            check_message(&m, &cfg);
            messages += 1;
        }
    };
    let mut chunks = Chunks::new(input);
    while let Some(chunk) = chunks.next() {
        if let Chunk::Data { side, bytes } = chunk {
            let _ = udp.probe(&ctx, side, bytes);
            parser.on_datagram(side, bytes, chunks.now, &mut emit);
        }
    }
    parser.on_close(chunks.now, &mut emit);
    let stats = parser.stats();
    assert_eq!(stats.messages, messages, "{stats:?}");
    assert!(
        stats.paired + stats.unsolicited <= stats.messages,
        "{stats:?}"
    );

    // TCP: the same chunks as two byte streams.
    let tcp = DnsTcpFactory::new(cfg);
    let ctx = ParserContext::new(L4Proto::Tcp, 40000, 53);
    run_stream(
        &tcp,
        &ctx,
        Chunks::new(input),
        |p| {
            assert!(
                p.buffered_bytes() <= 2 * (2 + 65_535),
                "{}",
                p.buffered_bytes()
            )
        },
        |m| check_message(&m, &cfg),
    );
});

//! The TLS handshake parser (through TlsParserFactory) fed arbitrary chunks
//! in both directions, with gaps. Asserts the handshake bytes it holds
//! never pass `max_handshake_bytes` per side; every message it emits is
//! folded into a TlsSession (which must not panic either).
#![no_main]

use flowscope::proto::tls::{probe_tls, TlsConfig, TlsParserFactory, TlsSession};
use flowscope_core::{L4Proto, ParserContext};
use flowscope_fuzz::{run_stream, Chunks, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let sel = input.u8();
    let cap = if sel & 1 != 0 {
        512
    } else {
        TlsConfig::default().max_handshake_bytes
    };
    let factory = TlsParserFactory::new(TlsConfig::default().with_max_handshake_bytes(cap));
    let ctx = ParserContext::new(L4Proto::Tcp, 40000, 443);
    let _ = probe_tls(data);
    let mut session = TlsSession::default();
    run_stream(
        &factory,
        &ctx,
        Chunks::new(input),
        |p| {
            assert!(p.buffered_bytes() <= 2 * cap, "{}", p.buffered_bytes());
        },
        |msg| session.apply(&msg),
    );
    let _ = session.version();
});

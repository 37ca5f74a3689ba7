//! The HTTP/1.x parser (through HttpParserFactory) fed arbitrary chunks in
//! both directions, with gaps. Asserts its header buffers never pass
//! `max_header_bytes` per side and pending requests never pass their cap.
#![no_main]

use flowscope::proto::http::{HttpConfig, HttpParserFactory};
use flowscope_core::{L4Proto, ParserContext};
use flowscope_fuzz::{run_stream, Chunks, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let sel = input.u8();
    let mut config = HttpConfig::default();
    if sel & 1 != 0 {
        // Small caps, so the fuzzer reaches them.
        config.max_header_bytes = 256;
        config.max_headers_kept = 4;
        config.max_pending_requests = 3;
        config.max_interim = 2;
    }
    let factory = HttpParserFactory::new(config.clone());
    let ctx = ParserContext::new(L4Proto::Tcp, 40000, 80);
    run_stream(
        &factory,
        &ctx,
        Chunks::new(input),
        |p| {
            assert!(
                p.buffered_bytes() <= 2 * config.max_header_bytes,
                "{}",
                p.buffered_bytes()
            );
            assert!(p.pending_requests() <= config.max_pending_requests);
        },
        |tx| {
            // A transaction is a request, a response or both, never neither.
            assert!(tx.request.is_some() || tx.response.is_some());
            if let Some(resp) = &tx.response {
                assert!(resp.interim.len() <= config.max_interim);
                assert!(resp.headers.len() <= config.max_headers_kept);
            }
            if let Some(req) = &tx.request {
                assert!(req.headers.len() <= config.max_headers_kept);
            }
        },
    );
});

//! Every extractor (5-tuple, IP pair, MAC pair) on one arbitrary frame of
//! any link type the extractor supports (the first byte picks it and the
//! options). Asserts that `extract_into` over a reused result agrees with
//! `extract`, that the payload range lies inside the frame, and that the
//! 5-tuple extractor's fast path gives exactly what its general layer walk
//! (`extract_general`) gives.
#![no_main]

use flowscope::extract::{ExtractConfig, FiveTupleExtractor, IpPairExtractor, MacPairExtractor};
use flowscope_core::{Extracted, FlowExtractor, PacketView};
use flowscope_fuzz::frame_view;
use libfuzzer_sys::fuzz_target;

fn check<E: FlowExtractor>(ex: &E, view: &PacketView<'_>, reused: &mut Option<Extracted<E::Key>>)
where
    E::Key: PartialEq + core::fmt::Debug,
{
    let fresh = ex.extract(view);
    if let Ok(e) = &fresh {
        let r = e.payload;
        assert!(
            r.offset as usize + r.len as usize <= view.data.len(),
            "{r:?}"
        );
        // The slice helper must not panic either.
        let _ = r.slice(view.data);
    }
    // `extract_into` over the result of an earlier (different) frame must
    // give the same answer as a fresh `extract`.
    if let Some(out) = reused.as_mut() {
        let again = ex.extract_into(view, out);
        match (&fresh, again) {
            (Ok(e), Ok(())) => {
                assert_eq!(e.key, out.key);
                assert_eq!(e.orientation, out.orientation);
                assert_eq!(e.l4, out.l4);
                assert_eq!(e.ip_len, out.ip_len);
                assert_eq!(e.payload_wire_len, out.payload_wire_len);
                assert_eq!(e.payload, out.payload);
                assert_eq!(e.tcp, out.tcp);
                assert_eq!(e.first_fragment, out.first_fragment);
                assert_eq!(e.encap.len(), out.encap.len());
            }
            (Err(a), Err(b)) => assert_eq!(*a, b),
            (a, b) => panic!("extract {a:?} vs extract_into {b:?}"),
        }
    }
    if let Ok(e) = fresh {
        *reused = Some(e);
    }
}

/// The fast path (`extract`, which tries it first) against the general walk.
fn fast_equals_general(ex: &FiveTupleExtractor, view: &PacketView<'_>) {
    match (ex.extract(view), ex.extract_general(view)) {
        (Ok(f), Ok(g)) => assert_eq!(f, g),
        (Err(f), Err(g)) => assert_eq!(f, g),
        (f, g) => panic!("fast {f:?} vs general {g:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let input = frame_view(data);
    let mut cfg = ExtractConfig::default();
    cfg.verify_checksums = input.verify_checksums;
    cfg.decap_tunnels = input.decap_tunnels;
    let five = FiveTupleExtractor::new(cfg.clone());
    let pair = IpPairExtractor::new(cfg.clone());
    let mac = MacPairExtractor::new(cfg.clone());
    let _ = flowscope::extract::decode(&input.view, &cfg, &mut Default::default());
    fast_equals_general(&five, &input.view);
    // Run twice: the second pass reuses the first pass's result as the
    // `extract_into` target (the reuse path the pipelines take).
    let (mut r5, mut rp, mut rm) = (None, None, None);
    for _ in 0..2 {
        check(&five, &input.view, &mut r5);
        check(&pair, &input.view, &mut rp);
        check(&mac, &input.view, &mut rm);
    }
});

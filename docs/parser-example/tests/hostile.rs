//! Hostile input: whatever the bytes, chunking, gaps and sides, the parser
//! never panics and never holds more than its cap.

mod common;

use flowscope_core::{
    FlowSide, L4Proto, ParserContext, Probe, SessionParser, SessionParserFactory, Timestamp,
};
use flowscope_example_lenproto::{LenProtoConfig, LenProtoFactory, LenProtoParser, HEADER_LEN};
use proptest::prelude::*;

/// One thing the driver may do to a parser.
#[derive(Clone, Debug)]
enum Call {
    Data(FlowSide, Vec<u8>),
    Gap(FlowSide, u64),
}

fn side() -> impl Strategy<Value = FlowSide> {
    prop_oneof![Just(FlowSide::Initiator), Just(FlowSide::Responder)]
}

/// Pure noise.
fn random_calls() -> impl Strategy<Value = Vec<Call>> {
    prop::collection::vec(
        prop_oneof![
            8 => (side(), prop::collection::vec(any::<u8>(), 0..200)).prop_map(|(s, b)| Call::Data(s, b)),
            1 => (side(), any::<u64>()).prop_map(|(s, n)| Call::Gap(s, n)),
        ],
        0..40,
    )
}

/// Headers that mostly parse (version 1, lengths around the cap) whose
/// bodies may be shorter or longer than declared: this reaches the deep
/// states (long hello bodies, skipped bodies, mid-body gaps) that noise
/// almost never does.
fn framed_calls(max_body: u16) -> impl Strategy<Value = Vec<Call>> {
    let header = (
        prop_oneof![9 => Just(1u8), 1 => any::<u8>()],
        prop_oneof![3 => 1u8..=3, 1 => any::<u8>()],
        0..=max_body.saturating_add(4),
        prop::collection::vec(any::<u8>(), 0..=usize::from(max_body) + 8),
    )
        .prop_map(|(v, k, len, body)| {
            let mut f = vec![v, k];
            f.extend_from_slice(&len.to_be_bytes());
            f.extend(body);
            f
        });
    prop::collection::vec(
        prop_oneof![
            8 => (side(), header).prop_map(|(s, b)| Call::Data(s, b)),
            1 => (side(), 0u64..80).prop_map(|(s, n)| Call::Gap(s, n)),
        ],
        0..40,
    )
}

fn drive(max_body: u16, calls: &[Call], cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut p = LenProtoParser::new(LenProtoConfig::default().with_max_body(max_body));
    let cap = 2 * (usize::from(max_body) + HEADER_LEN);
    let mut sink = |_| {};
    for (n, call) in calls.iter().enumerate() {
        let t = Timestamp::from_nanos(n as u64);
        match call {
            Call::Data(side, bytes) => {
                for c in common::chunks(bytes, cuts) {
                    p.on_data(*side, &c, t, &mut sink);
                    prop_assert!(
                        p.buffered_bytes() <= cap,
                        "{} > {}",
                        p.buffered_bytes(),
                        cap
                    );
                }
            }
            Call::Gap(side, len) => p.on_gap(*side, *len, t, &mut sink),
        }
        prop_assert!(p.buffered_bytes() <= cap);
        if p.is_poisoned() {
            prop_assert_eq!(p.buffered_bytes(), 0);
        }
    }
    p.on_close(Timestamp::MAX, &mut sink);
    prop_assert_eq!(p.buffered_bytes(), 0, "closing frees everything");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn noise_never_panics_nor_overbuffers(calls in random_calls(),
                                          cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        drive(LenProtoConfig::DEFAULT_MAX_BODY, &calls, &cuts)?;
    }

    #[test]
    fn near_valid_frames_never_panic_nor_overbuffer(max_body in 0u16..64,
                                                    calls in framed_calls(63),
                                                    cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        drive(max_body, &calls, &cuts)?;
    }

    #[test]
    fn probe_never_panics(data in prop::collection::vec(any::<u8>(), 0..64),
                          max_body in any::<u16>(), responder in any::<bool>()) {
        let f = LenProtoFactory::new(LenProtoConfig::default().with_max_body(max_body));
        let side = if responder { FlowSide::Responder } else { FlowSide::Initiator };
        let verdict = f.probe(&ParserContext::new(L4Proto::Tcp, 1, 2), side, &data);
        // NeedMore only ever for the initiator and fewer than 4 bytes.
        if verdict == Probe::NeedMore {
            prop_assert!(!responder && data.len() < HEADER_LEN);
        }
    }
}

//! Segment boundaries carry no meaning: any way of cutting a side's stream
//! into chunks, and any interleaving of the two sides' chunks, must give the
//! same events as feeding each stream whole. And feeding it whole must give
//! one message per generated frame of a known kind (the model).

mod common;

use common::{chunks, frame, run, side_of, Event};
use flowscope_core::{FlowSide, SessionEvent, SessionParser, Timestamp};
use flowscope_example_lenproto::{
    LenProtoConfig, LenProtoParser, MessageKind, KIND_BYE, KIND_DATA, KIND_HELLO,
};
use proptest::prelude::*;

/// One generated frame: kind byte and body.
#[derive(Clone, Debug)]
struct Frame {
    kind: u8,
    body: Vec<u8>,
}

fn any_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        "\\PC{0,12}".prop_map(|s| Frame {
            kind: KIND_HELLO,
            body: s.into_bytes()
        }),
        (
            prop::sample::select(vec![KIND_DATA, KIND_BYE, 0, 4, 200, 255]),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(kind, body)| Frame { kind, body }),
    ]
}

/// A session: a hello first (so no MISSING_HELLO noise), then any frames.
fn any_session() -> impl Strategy<Value = Vec<Frame>> {
    ("\\PC{0,12}", prop::collection::vec(any_frame(), 0..12)).prop_map(|(name, mut rest)| {
        rest.insert(
            0,
            Frame {
                kind: KIND_HELLO,
                body: name.into_bytes(),
            },
        );
        rest
    })
}

fn encode(frames: &[Frame]) -> Vec<u8> {
    frames.iter().flat_map(|f| frame(f.kind, &f.body)).collect()
}

fn messages(events: &[Event]) -> Vec<(u8, u16, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Message(m) => Some((
                m.kind.code(),
                m.body_len,
                match &m.kind {
                    MessageKind::Hello { client_name } => Some(client_name.clone()),
                    _ => None,
                },
            )),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn whole_stream_gives_one_message_per_known_frame(session in any_session()) {
        let events = run(LenProtoConfig::default(), FlowSide::Initiator, &[encode(&session)]);
        let expected: Vec<_> = session
            .iter()
            .filter(|f| matches!(f.kind, KIND_HELLO | KIND_DATA | KIND_BYE))
            .map(|f| {
                let name = (f.kind == KIND_HELLO)
                    .then(|| String::from_utf8(f.body.clone()).unwrap());
                (f.kind, u16::try_from(f.body.len()).unwrap(), name)
            })
            .collect();
        prop_assert_eq!(messages(&events), expected);
    }

    #[test]
    fn any_split_gives_the_same_events(session in any_session(),
                                       cuts in prop::collection::vec(any::<usize>(), 0..30)) {
        let bytes = encode(&session);
        let whole = run(LenProtoConfig::default(), FlowSide::Initiator, &[bytes.as_slice()]);
        let split = run(LenProtoConfig::default(), FlowSide::Initiator, &chunks(&bytes, &cuts));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn every_prefix_then_rest_gives_the_same_events(session in any_session()) {
        // Exhaustive over two-chunk splits: every header and body boundary.
        let bytes = encode(&session);
        let whole = run(LenProtoConfig::default(), FlowSide::Initiator, &[bytes.as_slice()]);
        for at in 0..=bytes.len() {
            let (a, b) = bytes.split_at(at);
            let split = run(LenProtoConfig::default(), FlowSide::Initiator, &[a, b]);
            prop_assert_eq!(&split, &whole, "split at {}", at);
        }
    }

    #[test]
    fn any_interleaving_of_the_sides_gives_each_side_the_same_events(
        init in any_session(),
        resp in prop::collection::vec(any_frame(), 0..12),
        init_cuts in prop::collection::vec(any::<usize>(), 0..20),
        resp_cuts in prop::collection::vec(any::<usize>(), 0..20),
        order in prop::collection::vec(any::<bool>(), 0..60),
    ) {
        let (init_bytes, resp_bytes) = (encode(&init), encode(&resp));
        let cfg = LenProtoConfig::default();
        let init_whole = run(cfg, FlowSide::Initiator, &[init_bytes.as_slice()]);
        let resp_whole = run(cfg, FlowSide::Responder, &[resp_bytes.as_slice()]);

        // Merge the two chunk lists in the order `order` picks (each side's
        // own order kept), then whatever is left.
        let mut i = chunks(&init_bytes, &init_cuts).into_iter();
        let mut r = chunks(&resp_bytes, &resp_cuts).into_iter();
        let mut p = LenProtoParser::new(cfg);
        let mut events = Vec::new();
        let t = Timestamp::from_nanos(1);
        for pick_initiator in order {
            let (side, next) = if pick_initiator {
                (FlowSide::Initiator, i.next())
            } else {
                (FlowSide::Responder, r.next())
            };
            if let Some(c) = next {
                p.on_data(side, &c, t, &mut |e| events.push(e));
            }
        }
        for c in i {
            p.on_data(FlowSide::Initiator, &c, t, &mut |e| events.push(e));
        }
        for c in r {
            p.on_data(FlowSide::Responder, &c, t, &mut |e| events.push(e));
        }
        p.on_close(Timestamp::from_nanos(2), &mut |e| events.push(e));

        let of = |side| events.iter().filter(|e| side_of(e) == Some(side)).cloned().collect::<Vec<_>>();
        prop_assert_eq!(of(FlowSide::Initiator), init_whole);
        prop_assert_eq!(of(FlowSide::Responder), resp_whole);
    }
}

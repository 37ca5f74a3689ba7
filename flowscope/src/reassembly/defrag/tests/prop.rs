//! Properties: any arrival order of a fragment set rebuilds the exact
//! original packet; hostile fragment streams never panic and keep every
//! fragment accounted for within the memory budget.

use proptest::prelude::*;

use super::*;

/// A UDP datagram, its fragments (payload pieces of `8 * units` bytes) and
/// its original packet, for either IP version.
fn fragment_set(v6: bool, len: usize, units: usize, seed: u8) -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    let data = payload(len, seed);
    if v6 {
        let whole = udp_v6(seed.is_multiple_of(2), &data);
        let frags = fragment_v6(&whole, u32::from(seed) << 8, units * 8);
        (data, whole, frags)
    } else {
        let whole = udp_v4(u16::from(seed), &[], &data);
        let frags = fragment_v4(&whole, units * 8);
        (data, whole, frags)
    }
}

/// Fragment sets with at least two fragments, in a random order, with some
/// of them sent twice.
fn shuffled_sets() -> impl Strategy<Value = (bool, Vec<u8>, Vec<u8>, Vec<Vec<u8>>)> {
    (any::<bool>(), 16usize..3000, 1usize..64, any::<u8>())
        .prop_filter("fragmented", |&(_, len, units, _)| len + 8 > units * 8)
        .prop_flat_map(|(v6, len, units, seed)| {
            let (data, whole, frags) = fragment_set(v6, len, units, seed);
            let n = frags.len();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let dups = proptest::collection::vec(0..n, 0..4);
            (Just(v6), Just(data), Just(whole), Just(frags), order, dups)
        })
        .prop_map(|(v6, data, whole, frags, order, dups)| {
            // A duplicate is re-sent right after its original, unless that
            // one is the last (it completes the datagram).
            let mut seq = Vec::new();
            for (k, &i) in order.iter().enumerate() {
                seq.push(frags[i].clone());
                if k + 1 < order.len() {
                    for _ in dups.iter().filter(|&&d| d == i) {
                        seq.push(frags[i].clone());
                    }
                }
            }
            (v6, data, whole, seq)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_order_rebuilds_the_original((_v6, data, whole, seq) in shuffled_sets()) {
        let mut d = Defragmenter::default();
        let (last, rest) = seq.split_last().expect("two or more fragments");
        for f in rest {
            let out = d.push(T0, f);
            prop_assert!(
                out == DefragOutcome::Held || out == DefragOutcome::Dropped(DropReason::Duplicate),
                "{out:?}"
            );
        }
        let rebuilt = match d.push(T0, last) {
            DefragOutcome::Complete(p) => p.to_vec(),
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert_eq!(&rebuilt, &whole);
        assert_whole_udp(&rebuilt, &data);
        let s = check(&d);
        prop_assert_eq!(s.datagrams_completed, 1);
        prop_assert_eq!(s.held_now, 0);
        prop_assert_eq!(s.fragments_completed + s.dropped_duplicate, seq.len() as u64);
    }

    /// Fragments cut at random places, with random offsets and flags, of a
    /// few datagrams interleaved, under tight limits.
    #[test]
    fn hostile_fragments_never_panic_and_stay_accounted(
        ops in proptest::collection::vec(
            (any::<bool>(), 0u8..3, 0usize..400, 0usize..300, any::<bool>(), any::<u8>(), 0u32..5000),
            1..200,
        ),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let config = DefragConfig {
            max_datagrams: 3,
            max_memory: 6000,
            timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let mut d = Defragmenter::new(config);
        let base4 = udp_v4(1, &[], &payload(800, 0));
        let base6 = udp_v6(true, &payload(800, 0));
        for (v6, id, unit, len, more, fill, ms) in ops {
            let chunk = vec![fill; len];
            let off = unit * 8;
            let mut f = if v6 {
                v6_fragment(&base6, u32::from(id), off, more, &chunk)
            } else {
                let mut w = base4.clone();
                w[5] = id;
                v4_fragment(&w, off, more, &chunk)
            };
            if fill == 0xff {
                // Sometimes garbage after a valid header, sometimes cut short.
                f.truncate(f.len().min(20 + tail.len()));
                f.extend_from_slice(&tail);
            }
            let ts = at(f64::from(ms) / 1000.0);
            if let DefragOutcome::Complete(p) = d.push(ts, &f) {
                prop_assert!(p.len() <= 65_535 + 64);
            }
            check(&d);
        }
        d.advance_to(Timestamp::MAX);
        let s = check(&d);
        prop_assert_eq!((s.held_now, s.datagrams_held_now), (0, 0));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut d = Defragmenter::default();
        let _ = d.push(T0, &bytes);
        check(&d);
    }
}

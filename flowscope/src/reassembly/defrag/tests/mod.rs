//! Defragmenter tests over hand-built fragments.

mod fixtures;
mod prop;

use core::time::Duration;

use flowscope_core::Timestamp;

use super::{DefragConfig, DefragOutcome, DefragStats, Defragmenter, DropReason};
use fixtures::*;

const T0: Timestamp = Timestamp::from_secs_nanos(1_700_000_000, 0);

fn at(secs_after: f64) -> Timestamp {
    T0.saturating_add(Duration::from_secs_f64(secs_after))
}

/// The accounting invariant, checked after every test step that matters.
fn check(d: &Defragmenter) -> DefragStats {
    let s = d.stats();
    assert_eq!(
        s.accounted(),
        s.fragments,
        "every fragment accounted: {s:?}"
    );
    assert!(s.memory_reserved <= d.config().max_memory as u64, "{s:?}");
    s
}

/// Pushes `frags` in order; the last must complete the datagram, every
/// other one must be held. Returns the rebuilt packet.
fn push_all(d: &mut Defragmenter, frags: &[Vec<u8>]) -> Vec<u8> {
    let (last, rest) = frags.split_last().expect("fragments");
    for f in rest {
        assert_eq!(d.push(T0, f), DefragOutcome::Held);
    }
    match d.push(T0, last) {
        DefragOutcome::Complete(p) => p.to_vec(),
        other => panic!("expected a whole datagram, got {other:?}"),
    }
}

/// A fixed permutation with no fragment in its own place (for 5+ items):
/// odd indices first, then even ones, each reversed.
fn shuffled<T: Clone>(v: &[T]) -> Vec<T> {
    let odd = v.iter().skip(1).step_by(2).rev();
    let even = v.iter().step_by(2).rev();
    odd.chain(even).cloned().collect()
}

fn v4_case() -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    let data = payload(1000, 3);
    let whole = udp_v4(0x1234, &[], &data);
    // 1008 bytes of UDP in 200-byte pieces: 6 fragments, the last of 8.
    let frags = fragment_v4(&whole, 200);
    (data, whole, frags)
}

fn v6_case() -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    let data = payload(1000, 9);
    let whole = udp_v6(true, &data);
    let frags = fragment_v6(&whole, 0xdead_beef, 256);
    (data, whole, frags)
}

#[test]
fn fixtures_are_valid_packets() {
    let (data, whole, frags) = v4_case();
    assert_whole_udp(&whole, &data);
    assert_eq!(frags.len(), 6);
    let (data, whole, frags) = v6_case();
    assert_whole_udp(&whole, &data);
    assert_eq!(frags.len(), 4);
}

#[test]
fn rebuilds_ipv4_in_order_reversed_and_shuffled() {
    let (data, whole, frags) = v4_case();
    for order in [
        frags.clone(),
        frags.iter().rev().cloned().collect(),
        shuffled(&frags),
    ] {
        let mut d = Defragmenter::default();
        let rebuilt = push_all(&mut d, &order);
        assert_eq!(rebuilt, whole);
        assert_whole_udp(&rebuilt, &data);
        let s = check(&d);
        assert_eq!((s.fragments, s.fragments_completed), (6, 6));
        assert_eq!((s.datagrams_completed, s.held_now), (1, 0));
        assert_eq!(s.datagrams_held_now, 0);
    }
}

#[test]
fn rebuilds_ipv6_in_order_reversed_and_shuffled() {
    let (data, whole, frags) = v6_case();
    for order in [
        frags.clone(),
        frags.iter().rev().cloned().collect(),
        shuffled(&frags),
    ] {
        let mut d = Defragmenter::default();
        let rebuilt = push_all(&mut d, &order);
        assert_eq!(rebuilt, whole);
        assert_whole_udp(&rebuilt, &data);
        let s = check(&d);
        assert_eq!((s.fragments_completed, s.datagrams_completed), (4, 1));
    }
}

#[test]
fn rebuilds_ipv6_without_extension_headers() {
    let data = payload(300, 1);
    let whole = udp_v6(false, &data);
    let frags = fragment_v6(&whole, 1, 104);
    let mut d = Defragmenter::default();
    let rebuilt = push_all(&mut d, &shuffled(&frags));
    assert_eq!(rebuilt, whole);
    assert_whole_udp(&rebuilt, &data);
}

#[test]
fn keeps_ipv4_options_of_the_first_fragment() {
    let data = payload(100, 5);
    // Record Route-free padding: four No-Operation options (RFC 791).
    let whole = udp_v4(7, &[1, 1, 1, 1], &data);
    let frags = fragment_v4(&whole, 64);
    let mut d = Defragmenter::default();
    let rebuilt = push_all(&mut d, &frags);
    assert_eq!(rebuilt, whole);
    assert_whole_udp(&rebuilt, &data);
}

#[test]
fn keeps_df_and_ignores_link_padding() {
    let data = payload(40, 2);
    let mut whole = udp_v4(9, &[], &data);
    let frags = fragment_v4(&whole, 16);
    // The first fragment says DF (odd but legal to carry); padding follows
    // every fragment as an Ethernet trailer would.
    let mut first = frags[0].clone();
    first[6] |= 0x40;
    first[10..12].copy_from_slice(&[0, 0]);
    let c = csum(&first[..20]);
    first[10..12].copy_from_slice(&c.to_be_bytes());
    let mut d = Defragmenter::default();
    let mut last = None;
    for f in std::iter::once(&first).chain(&frags[1..]) {
        let mut padded = f.clone();
        padded.extend_from_slice(&[0xee; 6]);
        if let DefragOutcome::Complete(p) = d.push(T0, &padded) {
            last = Some(p.to_vec());
        }
    }
    whole[6] |= 0x40;
    whole[10..12].copy_from_slice(&[0, 0]);
    let c = csum(&whole[..20]);
    whole[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(last.as_deref(), Some(&whole[..]));
}

#[test]
fn ipv4_duplicates_are_ignored_and_counted() {
    let (data, whole, frags) = v4_case();
    let mut d = Defragmenter::default();
    assert_eq!(d.push(T0, &frags[0]), DefragOutcome::Held);
    assert_eq!(
        d.push(T0, &frags[0]),
        DefragOutcome::Dropped(DropReason::Duplicate)
    );
    assert_eq!(d.push(T0, &frags[2]), DefragOutcome::Held);
    assert_eq!(
        d.push(T0, &frags[2]),
        DefragOutcome::Dropped(DropReason::Duplicate)
    );
    let rebuilt = push_all(&mut d, &[&frags[1..2], &frags[3..]].concat());
    assert_eq!(rebuilt, whole);
    assert_whole_udp(&rebuilt, &data);
    let s = check(&d);
    assert_eq!((s.fragments, s.dropped_duplicate), (8, 2));
    assert_eq!(s.fragments_completed, 6);
}

#[test]
fn ipv6_exact_duplicate_does_not_abandon_the_datagram() {
    let (data, whole, frags) = v6_case();
    let mut d = Defragmenter::default();
    assert_eq!(d.push(T0, &frags[1]), DefragOutcome::Held);
    assert_eq!(
        d.push(T0, &frags[1]),
        DefragOutcome::Dropped(DropReason::Duplicate)
    );
    let rest = [&frags[..1], &frags[2..]].concat();
    let rebuilt = push_all(&mut d, &rest);
    assert_eq!(rebuilt, whole);
    assert_whole_udp(&rebuilt, &data);
    let s = check(&d);
    assert_eq!((s.dropped_duplicate, s.dropped_overlap), (1, 0));
}

#[test]
fn ipv4_overlap_drops_the_fragment_and_first_data_wins() {
    let (data, whole, frags) = v4_case();
    let body = &whole[20..];
    let mut d = Defragmenter::default();
    assert_eq!(d.push(T0, &frags[1]), DefragOutcome::Held); // [200, 400)
                                                            // [96, 296) with rewritten bytes: overlaps [200, 296).
    let evil = v4_fragment(&whole, 96, true, &[0xaa; 200]);
    assert_eq!(
        d.push(T0, &evil),
        DefragOutcome::Dropped(DropReason::Overlap)
    );
    // Inside [200, 400) but with different bytes: an overlap, not a duplicate.
    let mut changed = body[200..400].to_vec();
    changed[10] ^= 1;
    let rewrite = v4_fragment(&whole, 200, true, &changed);
    assert_eq!(
        d.push(T0, &rewrite),
        DefragOutcome::Dropped(DropReason::Overlap)
    );
    let rest = [&frags[..1], &frags[2..]].concat();
    let rebuilt = push_all(&mut d, &rest);
    assert_eq!(rebuilt, whole, "the bytes first received are kept");
    assert_whole_udp(&rebuilt, &data);
    let s = check(&d);
    assert_eq!((s.dropped_overlap, s.fragments_completed), (2, 6));
}

/// The teardrop attack: a second fragment starting inside the first and
/// ending before it (negative length in naive reassemblers).
#[test]
fn teardrop_offsets_are_dropped_without_harm() {
    let whole = udp_v4(0x0314, &[], &payload(64, 0));
    let mut d = Defragmenter::default();
    let first = v4_fragment(&whole, 0, true, &whole[20..20 + 48]);
    let tear = v4_fragment(&whole, 24, false, &[0x41; 4]);
    assert_eq!(d.push(T0, &first), DefragOutcome::Held);
    // It is the last fragment yet ends before data already held.
    assert_eq!(
        d.push(T0, &tear),
        DefragOutcome::Dropped(DropReason::Malformed)
    );
    let tear_more = v4_fragment(&whole, 24, true, &[0x41; 8]);
    assert_eq!(
        d.push(T0, &tear_more),
        DefragOutcome::Dropped(DropReason::Overlap)
    );
    let s = check(&d);
    assert_eq!((s.held_now, s.malformed, s.dropped_overlap), (1, 1, 1));
    // The real last fragment still completes the datagram.
    let last = v4_fragment(&whole, 48, false, &whole[20 + 48..]);
    assert!(matches!(d.push(T0, &last), DefragOutcome::Complete(p) if p == whole));
}

#[test]
fn ipv6_overlap_abandons_the_datagram_until_timeout() {
    let (data, whole, frags) = v6_case();
    let body = &whole[40 + HBH_LEN..];
    let mut d = Defragmenter::default();
    assert_eq!(d.push(T0, &frags[0]), DefragOutcome::Held);
    assert_eq!(d.push(T0, &frags[1]), DefragOutcome::Held);
    // [504, 760) overlaps [256, 512) by 8 bytes, even with identical bytes.
    let over = v6_fragment(&whole, 0xdead_beef, 504, true, &body[504..760]);
    assert_eq!(
        d.push(at(1.0), &over),
        DefragOutcome::Dropped(DropReason::Overlap)
    );
    let s = check(&d);
    assert_eq!((s.dropped_overlap, s.held_now), (3, 0));
    assert_eq!((s.datagrams_overlapped, s.datagrams_held_now), (1, 0));
    // Late fragments of the abandoned datagram are dropped too, even valid ones.
    for f in &frags[2..] {
        assert_eq!(
            d.push(at(2.0), f),
            DefragOutcome::Dropped(DropReason::Overlap)
        );
    }
    let s = check(&d);
    assert_eq!(s.dropped_overlap, 5);
    // Once the timeout has passed since its first fragment, the key is free.
    let rebuilt = {
        let mut out = None;
        for f in &frags {
            if let DefragOutcome::Complete(p) = d.push(at(30.0), f) {
                out = Some(p.to_vec());
            }
        }
        out.expect("reassembled after the abandoned key expired")
    };
    assert_eq!(rebuilt, whole);
    assert_whole_udp(&rebuilt, &data);
    let s = check(&d);
    // The abandoned datagram held nothing when it expired.
    assert_eq!((s.timed_out, s.datagrams_timed_out), (0, 0));
}

#[test]
fn timeout_expires_incomplete_datagrams_on_advance_and_on_push() {
    let (_, _, frags) = v4_case();
    let (_, _, frags6) = v6_case();
    let mut d = Defragmenter::default();
    assert_eq!(d.push(T0, &frags[0]), DefragOutcome::Held);
    assert_eq!(d.push(at(10.0), &frags[1]), DefragOutcome::Held);
    assert_eq!(d.push(at(10.0), &frags6[0]), DefragOutcome::Held);
    d.advance_to(at(29.999));
    assert_eq!(check(&d).held_now, 3);
    // 30 s after the IPv4 datagram's first fragment (Linux ipfrag_time).
    d.advance_to(at(30.0));
    let s = check(&d);
    assert_eq!((s.timed_out, s.datagrams_timed_out, s.held_now), (2, 1, 1));
    // The IPv6 one started at 10 s; a push at 40 s expires it first, and
    // the missing fragments that follow start a new datagram.
    assert_eq!(d.push(at(40.0), &frags[2]), DefragOutcome::Held);
    let s = check(&d);
    assert_eq!((s.timed_out, s.datagrams_timed_out), (3, 2));
    assert_eq!((s.held_now, s.datagrams_held_now), (1, 1));
}

#[test]
fn missing_last_fragment_never_completes() {
    let (_, _, frags) = v4_case();
    let mut d = Defragmenter::default();
    for f in &frags[..frags.len() - 1] {
        assert_eq!(d.push(T0, f), DefragOutcome::Held);
    }
    let s = check(&d);
    assert_eq!((s.held_now, s.datagrams_completed), (5, 0));
    d.advance_to(Timestamp::MAX);
    let s = check(&d);
    assert_eq!((s.held_now, s.timed_out, s.datagrams_timed_out), (0, 5, 1));
}

#[test]
fn deadlines_do_not_run_backwards_with_capture_time() {
    let (_, _, frags) = v4_case();
    let other = fragment_v4(&udp_v4(0x9999, &[], &payload(100, 0)), 64);
    let mut d = Defragmenter::default();
    assert_eq!(d.push(at(100.0), &frags[0]), DefragOutcome::Held);
    // Time steps back 50 s: this datagram's deadline is raised to 130 s.
    assert_eq!(d.push(at(50.0), &other[0]), DefragOutcome::Held);
    d.advance_to(at(129.0));
    assert_eq!(check(&d).datagrams_held_now, 2);
    d.advance_to(at(130.0));
    let s = check(&d);
    assert_eq!((s.datagrams_timed_out, s.datagrams_held_now), (2, 0));
}

#[test]
fn full_table_drops_new_datagrams_and_keeps_old_ones() {
    let config = DefragConfig {
        max_datagrams: 2,
        ..Default::default()
    };
    let mut d = Defragmenter::new(config);
    let cases: Vec<_> = (0..3u16)
        .map(|id| {
            let data = payload(64, id as u8);
            let whole = udp_v4(id, &[], &data);
            (whole.clone(), fragment_v4(&whole, 40))
        })
        .collect();
    assert_eq!(d.push(T0, &cases[0].1[0]), DefragOutcome::Held);
    assert_eq!(d.push(T0, &cases[1].1[0]), DefragOutcome::Held);
    assert_eq!(
        d.push(T0, &cases[2].1[0]),
        DefragOutcome::Dropped(DropReason::TableFull)
    );
    assert!(matches!(d.push(T0, &cases[0].1[1]), DefragOutcome::Complete(p) if p == cases[0].0));
    // A slot is free again.
    assert_eq!(d.push(T0, &cases[2].1[0]), DefragOutcome::Held);
    let s = check(&d);
    assert_eq!((s.dropped_table_full, s.held_now), (1, 2));
}

#[test]
fn memory_cap_refuses_fragments_and_reuses_spare_buffers() {
    let config = DefragConfig {
        max_memory: 4096,
        ..Default::default()
    };
    let mut d = Defragmenter::new(config);
    let big = udp_v4(1, &[], &payload(6000, 0));
    // A fragment ending at 6008 bytes cannot fit 4096 bytes of buffer.
    let far = v4_fragment(&big, 5000, false, &big[20 + 5000..]);
    assert_eq!(d.push(T0, &far), DefragOutcome::Dropped(DropReason::Memory));
    let s = check(&d);
    assert_eq!((s.dropped_memory, s.datagrams_held_now), (1, 0));
    // Small datagrams fit, one after the other, in the same buffers.
    let small = udp_v4(2, &[], &payload(1000, 1));
    let frags = fragment_v4(&small, 512);
    assert_eq!(push_all(&mut d, &frags), small);
    let reserved = check(&d).memory_reserved;
    assert!(reserved > 0);
    let small2 = udp_v4(3, &[], &payload(1000, 2));
    assert_eq!(push_all(&mut d, &fragment_v4(&small2, 512)), small2);
    assert_eq!(check(&d).memory_reserved, reserved, "buffers reused");
    // Two datagrams in flight that together need more than the cap.
    let a = fragment_v4(&udp_v4(4, &[], &payload(3000, 0)), 1496);
    let b = fragment_v4(&udp_v4(5, &[], &payload(3000, 0)), 1496);
    assert_eq!(d.push(T0, &a[1]), DefragOutcome::Held);
    assert_eq!(
        d.push(T0, &b[1]),
        DefragOutcome::Dropped(DropReason::Memory)
    );
    check(&d);
}

#[test]
fn too_big_fragments_are_dropped() {
    let whole = udp_v4(1, &[], &payload(64, 0));
    let mut d = Defragmenter::default();
    // Ping of death: offset 65 528 + 16 bytes passes the 16-bit total length.
    let pod = v4_fragment(&whole, 65_528, false, &[0; 16]);
    assert_eq!(d.push(T0, &pod), DefragOutcome::Dropped(DropReason::TooBig));
    // 20-byte header + 65 512 + 8 = 65 540 > 65 535, even if the
    // configured limit allowed it: the header is added to the field.
    let edge = v4_fragment(&whole, 65_512, false, &[0; 8]);
    assert_eq!(
        d.push(T0, &edge),
        DefragOutcome::Dropped(DropReason::TooBig)
    );
    // 20 + 65 504 + 8 = 65 532 fits the field.
    let fits = v4_fragment(&whole, 65_504, false, &[0; 8]);
    assert_eq!(d.push(T0, &fits), DefragOutcome::Held);
    let config = DefragConfig {
        max_datagram_len: 1000,
        ..Default::default()
    };
    let mut small = Defragmenter::new(config);
    let over = v4_fragment(&whole, 992, false, &[0; 16]);
    assert_eq!(
        small.push(T0, &over),
        DefragOutcome::Dropped(DropReason::TooBig)
    );
    let s = check(&d);
    assert_eq!((s.dropped_too_big, s.held_now), (2, 1));
    assert_eq!(check(&small).dropped_too_big, 1);
}

#[test]
fn ipv6_too_big_counts_the_extension_headers() {
    let whole = udp_v6(true, &payload(64, 0));
    let mut d = Defragmenter::default();
    // The fragmentable part may end at 65 535 - 8 (Hop-by-Hop) = 65 527.
    let tail = v6_fragment(&whole, 5, 65_520, false, &[0; 15]);
    assert_eq!(d.push(T0, &tail), DefragOutcome::Held);
    // The first fragment shows the 8-byte Hop-by-Hop header: 8 + 65 535 > max.
    let tail2 = v6_fragment(&whole, 6, 65_520, false, &[0; 15]);
    let first = v6_fragment(&whole, 6, 0, true, &[0; 8]);
    let mut d2 = Defragmenter::default();
    assert_eq!(d2.push(T0, &tail2), DefragOutcome::Held);
    assert_eq!(
        d2.push(T0, &first),
        DefragOutcome::Dropped(DropReason::TooBig)
    );
    // The other way round: 8 + 65 528 > 65 535 once the header is known.
    let first7 = v6_fragment(&whole, 7, 0, true, &[0; 8]);
    let tail7 = v6_fragment(&whole, 7, 65_520, false, &[0; 8]);
    let mut d3 = Defragmenter::default();
    assert_eq!(d3.push(T0, &first7), DefragOutcome::Held);
    assert_eq!(
        d3.push(T0, &tail7),
        DefragOutcome::Dropped(DropReason::TooBig)
    );
    check(&d);
    assert_eq!(check(&d2).dropped_too_big, 1);
    assert_eq!(check(&d3).dropped_too_big, 1);
}

#[test]
fn malformed_fragments_are_counted_not_kept() {
    let whole = udp_v4(1, &[], &payload(64, 0));
    let mut d = Defragmenter::default();
    let odd = v4_fragment(&whole, 0, true, &whole[20..20 + 12]);
    let empty = v4_fragment(&whole, 8, true, &[]);
    let mut cut = v4_fragment(&whole, 8, true, &whole[28..36]);
    cut.truncate(cut.len() - 1);
    let mut zero_len = v4_fragment(&whole, 8, true, &whole[28..36]);
    zero_len[2..4].copy_from_slice(&[0, 0]);
    let v6_empty = v6_fragment(&udp_v6(false, &[1; 8]), 1, 8, false, &[]);
    let bads: [&[u8]; 9] = [
        &odd,
        &empty,
        &cut,
        &zero_len,
        &whole,      // not a fragment
        &[0x45],     // cut short
        &[0x20; 40], // version 2
        &[],
        &v6_empty,
    ];
    for bad in bads {
        assert_eq!(
            d.push(T0, bad),
            DefragOutcome::Dropped(DropReason::Malformed),
            "{bad:02x?}"
        );
    }
    let s = check(&d);
    assert_eq!((s.malformed, s.fragments, s.datagrams_held_now), (9, 9, 0));
}

#[test]
fn last_fragment_must_agree_with_the_known_length() {
    let whole = udp_v4(1, &[], &payload(64, 0));
    let mut d = Defragmenter::default();
    let last = v4_fragment(&whole, 40, false, &whole[60..]);
    assert_eq!(d.push(T0, &last), DefragOutcome::Held);
    // A second "last" fragment ending elsewhere, and a middle one past the end.
    let other_last = v4_fragment(&whole, 72, false, &[0; 8]);
    let past_end = v4_fragment(&whole, 80, true, &[0; 8]);
    for bad in [&other_last, &past_end] {
        assert_eq!(
            d.push(T0, bad),
            DefragOutcome::Dropped(DropReason::Malformed)
        );
    }
    let first = v4_fragment(&whole, 0, true, &whole[20..60]);
    assert!(matches!(d.push(T0, &first), DefragOutcome::Complete(p) if p == whole));
    check(&d);
}

/// Tiny fragments in an order that leaves many separate pieces (the
/// fragroute "frag 8, random order" evasion) still rebuild the datagram.
#[test]
fn many_tiny_fragments_in_scattered_order_rebuild() {
    let data = payload(2000, 6);
    let whole = udp_v4(1, &[], &data);
    let frags = fragment_v4(&whole, 8);
    assert_eq!(frags.len(), 251);
    let mut d = Defragmenter::default();
    let rebuilt = push_all(&mut d, &shuffled(&frags));
    assert_eq!(rebuilt, whole);
    assert_whole_udp(&rebuilt, &data);
    let v6 = udp_v6(true, &data);
    let rebuilt = push_all(&mut d, &shuffled(&fragment_v6(&v6, 3, 8)));
    assert_eq!(rebuilt, v6);
    assert_eq!(check(&d).datagrams_completed, 2);
}

#[test]
fn ipv6_atomic_fragment_is_returned_at_once() {
    let data = payload(20, 4);
    let whole = udp_v6(true, &data);
    let atomic = v6_fragment(&whole, 77, 0, false, &whole[48..]);
    let mut d = Defragmenter::default();
    // A held fragment with the same id must not be mixed in (RFC 6946).
    let held = v6_fragment(&whole, 77, 8, true, &[0; 8]);
    assert_eq!(d.push(T0, &held), DefragOutcome::Held);
    match d.push(T0, &atomic) {
        DefragOutcome::Complete(p) => {
            assert_eq!(p, &whole[..]);
            assert_whole_udp(p, &data);
        }
        other => panic!("{other:?}"),
    }
    let s = check(&d);
    assert_eq!((s.datagrams_completed, s.held_now), (1, 1));
}

#[test]
fn keys_separate_versions_protocols_and_ids() {
    let data = payload(100, 0);
    let udp4 = udp_v4(42, &[], &data);
    // Same addresses and id, protocol 6 instead of 17.
    let mut tcpish = udp4.clone();
    tcpish[9] = 6;
    let other_id = udp_v4(43, &[], &payload(100, 1));
    let v6 = udp_v6(false, &data);
    let sets = [
        fragment_v4(&udp4, 64),
        fragment_v4(&tcpish, 64),
        fragment_v4(&other_id, 64),
        fragment_v6(&v6, 42, 64),
    ];
    let mut d = Defragmenter::default();
    for set in &sets {
        assert_eq!(d.push(T0, &set[0]), DefragOutcome::Held);
    }
    assert_eq!(check(&d).datagrams_held_now, 4);
    for set in &sets {
        let rest = &set[1..];
        for f in &rest[..rest.len() - 1] {
            assert_eq!(d.push(T0, f), DefragOutcome::Held);
        }
        assert!(matches!(
            d.push(T0, rest.last().unwrap()),
            DefragOutcome::Complete(_)
        ));
    }
    assert_eq!(check(&d).datagrams_completed, 4);
}

#[test]
fn zero_limits_never_panic() {
    let config = DefragConfig {
        max_datagrams: 0,
        max_memory: 0,
        timeout: Duration::ZERO,
        ..Default::default()
    };
    let (_, _, frags) = v4_case();
    let mut d = Defragmenter::new(config.clone());
    assert_eq!(
        d.push(T0, &frags[0]),
        DefragOutcome::Dropped(DropReason::TableFull)
    );
    let mut d = Defragmenter::new(DefragConfig {
        max_datagrams: 1,
        ..config
    });
    assert_eq!(
        d.push(T0, &frags[0]),
        DefragOutcome::Dropped(DropReason::Memory)
    );
    let s = check(&d);
    assert_eq!((s.dropped_memory, s.datagrams_held_now), (1, 0));
    assert_eq!(
        d.table.len(),
        0,
        "a datagram that holds nothing is not kept"
    );
}

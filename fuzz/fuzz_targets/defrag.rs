//! Defragmenter fed fragments built from the input, with time moving
//! forwards and backwards. Most records build a well-formed IPv4 or IPv6
//! fragment around fuzzed fields (so the fuzzer reaches the hole, overlap,
//! timeout and limit logic rather than the header checks); some push raw
//! bytes. Asserts after every call: every fragment is accounted for once
//! (`DefragStats::accounted() == fragments`), memory and datagram counts
//! stay under their caps, and a completed datagram is a whole IP packet
//! whose length field matches its size and that carries no fragment flag.
#![no_main]

use core::time::Duration;

use flowscope::reassembly::defrag::{DefragConfig, DefragOutcome, Defragmenter};
use flowscope_core::Timestamp;
use flowscope_fuzz::Input;
use libfuzzer_sys::fuzz_target;

/// An IPv4 fragment: 20-byte header (or with options) and `data`.
fn ipv4(
    out: &mut Vec<u8>,
    id: u16,
    offset_units: u16,
    more: bool,
    proto: u8,
    opts: u8,
    data: &[u8],
) {
    let opt_words = usize::from(opts % 3);
    let hlen = 20 + opt_words * 4;
    let total = (hlen + data.len()).min(usize::from(u16::MAX)) as u16;
    let frag = (offset_units & 0x1fff) | if more { 0x2000 } else { 0 };
    out.push(0x40 | (hlen / 4) as u8);
    out.push(0);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&frag.to_be_bytes());
    out.extend_from_slice(&[64, proto, 0, 0]);
    out.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, (id & 3) as u8 + 2]);
    out.resize(out.len() + opt_words * 4, 1); // NOP options
    out.extend_from_slice(data);
}

/// An IPv6 fragment: fixed header, optional Hop-by-Hop header, Fragment header, `data`.
fn ipv6(
    out: &mut Vec<u8>,
    id: u16,
    offset_units: u16,
    more: bool,
    proto: u8,
    opts: u8,
    data: &[u8],
) {
    let hbh = opts % 2 == 1;
    let ext = if hbh { 8 } else { 0 } + 8;
    let plen = (ext + data.len()).min(usize::from(u16::MAX)) as u16;
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&plen.to_be_bytes());
    out.push(if hbh { 0 } else { 44 });
    out.push(64);
    let mut src = [0u8; 16];
    src[0] = 0xfe;
    src[15] = 1;
    let mut dst = src;
    dst[15] = (id & 3) as u8 + 2;
    out.extend_from_slice(&src);
    out.extend_from_slice(&dst);
    if hbh {
        out.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    }
    let fo = (offset_units & 0x1fff) << 3 | u16::from(more);
    out.extend_from_slice(&[proto, 0]);
    out.extend_from_slice(&fo.to_be_bytes());
    out.extend_from_slice(&u32::from(id).to_be_bytes());
    out.extend_from_slice(data);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let sel = input.u8();
    let mut config = DefragConfig::default();
    if sel & 1 != 0 {
        config.max_datagrams = 3;
        config.max_memory = 4096;
        config.max_datagram_len = 2048;
        config.timeout = Duration::from_secs(2);
    }
    let mut d = Defragmenter::new(config.clone());
    let mut now = Timestamp::from_secs_nanos(1000, 0);
    let mut frame = Vec::new();
    while !input.is_empty() {
        let ctl = input.u8();
        let step = Duration::from_millis(u64::from(input.u8()) * 100);
        now = if ctl & 0x80 != 0 {
            now.saturating_sub(step)
        } else {
            now.saturating_add(step)
        };
        frame.clear();
        match ctl & 7 {
            // Time passes, no fragment.
            0 => {
                d.advance_to(now);
                continue;
            }
            // Raw bytes.
            1 => {
                let len = usize::from(input.u16());
                frame.extend_from_slice(input.bytes(len));
            }
            kind => {
                let id = u16::from(input.u8() & 7);
                let offset_units = input.u16();
                let more = ctl & 0x08 != 0;
                let proto = if ctl & 0x10 != 0 { 17 } else { 6 };
                let opts = input.u8();
                let len = usize::from(input.u16() % 2048);
                // Data from the input, padded with a pattern the id picks so
                // that duplicates and conflicting overlaps both happen.
                let mut body = input.bytes(len).to_vec();
                body.resize(len, id as u8);
                if kind < 5 {
                    ipv4(&mut frame, id, offset_units, more, proto, opts, &body);
                } else {
                    ipv6(&mut frame, id, offset_units, more, proto, opts, &body);
                }
                if ctl & 0x20 != 0 {
                    // Link padding past the IP length: must be ignored.
                    frame.extend_from_slice(&[0xee; 6]);
                }
            }
        }
        let outcome = d.push(now, &frame);
        if let DefragOutcome::Complete(pkt) = outcome {
            match pkt.first().map(|b| b >> 4) {
                Some(4) => {
                    let total = pkt
                        .get(2..4)
                        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                    assert_eq!(total, Some(pkt.len()));
                    let frag = pkt
                        .get(6..8)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]) & 0x3fff);
                    assert_eq!(frag, Some(0), "rebuilt IPv4 still a fragment");
                }
                Some(6) => {
                    let plen = pkt
                        .get(4..6)
                        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                    assert_eq!(plen.map(|p| p + 40), Some(pkt.len()));
                }
                v => panic!("rebuilt datagram of IP version {v:?}"),
            }
        }
        let s = d.stats();
        assert_eq!(s.accounted(), s.fragments, "{s:?}");
        assert!(s.memory_reserved <= config.max_memory as u64, "{s:?}");
        assert!(s.datagrams_held_now <= config.max_datagrams as u64, "{s:?}");
    }
    d.advance_to(Timestamp::MAX);
    let s = d.stats();
    assert_eq!(s.accounted(), s.fragments, "{s:?}");
    assert_eq!(s.held_now, 0, "{s:?}");
    assert_eq!(s.datagrams_held_now, 0, "{s:?}");
});

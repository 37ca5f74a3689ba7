//! Reading one retired TPACKET_V3 block: its frame headers, and the 802.1Q
//! tag the kernel took out of each frame.
//!
//! Safe code over a plain byte slice (the block while userspace owns it), so
//! it can be tested on hand-built blocks. Every offset comes from the kernel
//! and is checked against the block before use: a bad one ends the walk of
//! that block instead of reading out of bounds.

use std::mem::offset_of;

use libc::{tpacket3_hdr, tpacket_block_desc, tpacket_hdr_v1, tpacket_hdr_variant1};

/// Where `tpacket_hdr_v1` starts inside `tpacket_block_desc`.
const BD_HDR: usize = offset_of!(tpacket_block_desc, hdr);
/// `block_status`, the word userspace and the kernel hand the block over with.
pub(crate) const BD_STATUS: usize = BD_HDR + offset_of!(tpacket_hdr_v1, block_status);
const BD_NUM_PKTS: usize = BD_HDR + offset_of!(tpacket_hdr_v1, num_pkts);
const BD_FIRST_PKT: usize = BD_HDR + offset_of!(tpacket_hdr_v1, offset_to_first_pkt);

const H3_NEXT: usize = offset_of!(tpacket3_hdr, tp_next_offset);
const H3_SEC: usize = offset_of!(tpacket3_hdr, tp_sec);
const H3_NSEC: usize = offset_of!(tpacket3_hdr, tp_nsec);
const H3_SNAPLEN: usize = offset_of!(tpacket3_hdr, tp_snaplen);
const H3_LEN: usize = offset_of!(tpacket3_hdr, tp_len);
const H3_STATUS: usize = offset_of!(tpacket3_hdr, tp_status);
const H3_MAC: usize = offset_of!(tpacket3_hdr, tp_mac);
const H3_HV1: usize = offset_of!(tpacket3_hdr, hv1);
const H3_VLAN_TCI: usize = H3_HV1 + offset_of!(tpacket_hdr_variant1, tp_vlan_tci);
const H3_VLAN_TPID: usize = H3_HV1 + offset_of!(tpacket_hdr_variant1, tp_vlan_tpid);
/// Size of the per-frame header the kernel writes.
pub(crate) const H3_SIZE: usize = std::mem::size_of::<tpacket3_hdr>();

/// The fields of one `tpacket3_hdr` that a receiver needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Capture time, whole seconds (`tp_sec`).
    pub sec: u32,
    /// Capture time, nanoseconds past `sec` (`tp_nsec`).
    pub nsec: u32,
    /// Bytes on the wire after the kernel stripped any VLAN tag (`tp_len`).
    pub len: u32,
    /// `tp_status` flags (`TP_STATUS_VLAN_VALID`, …).
    pub status: u32,
    /// The stripped outer tag's TCI, valid with `TP_STATUS_VLAN_VALID`.
    pub vlan_tci: u16,
    /// The stripped outer tag's TPID, valid with `TP_STATUS_VLAN_TPID_VALID`.
    pub vlan_tpid: u16,
}

impl FrameHeader {
    /// The outer tag the kernel removed, as `(tpid, tci)`, if any. Kernels
    /// older than 3.14 set no TPID flag; their tag was 802.1Q (0x8100).
    pub(crate) fn stripped_vlan(&self) -> Option<(u16, u16)> {
        if self.status & libc::TP_STATUS_VLAN_VALID == 0 {
            return None;
        }
        let tpid = if self.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
            self.vlan_tpid
        } else {
            0x8100
        };
        Some((tpid, self.vlan_tci))
    }
}

/// Why the walk of a block stopped early (the kernel never writes such a
/// block; counted, never trusted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MalformedBlock;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let bytes = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_ne_bytes(bytes))
}

/// Calls `each` with the header and the captured bytes of every frame in
/// `block`, in order. Returns how many frames were handed over, or
/// [`MalformedBlock`] (after handing over the good frames before the bad
/// one) if an offset or length points outside the block.
pub(crate) fn for_each_frame(
    block: &[u8],
    mut each: impl FnMut(&FrameHeader, &[u8]),
) -> Result<usize, (usize, MalformedBlock)> {
    let num = u32_at(block, BD_NUM_PKTS).ok_or((0, MalformedBlock))?;
    let mut off = u32_at(block, BD_FIRST_PKT).ok_or((0, MalformedBlock))? as usize;
    let mut done = 0usize;
    for _ in 0..num {
        let frame = (|| {
            let h = block.get(off..off.checked_add(H3_SIZE)?)?;
            let hdr = FrameHeader {
                sec: u32_at(h, H3_SEC)?,
                nsec: u32_at(h, H3_NSEC)?,
                len: u32_at(h, H3_LEN)?,
                status: u32_at(h, H3_STATUS)?,
                // The kernel field is 32 bits wide; a TCI is 16.
                vlan_tci: u32_at(h, H3_VLAN_TCI)? as u16,
                vlan_tpid: u16_at(h, H3_VLAN_TPID)?,
            };
            let snaplen = u32_at(h, H3_SNAPLEN)? as usize;
            // tp_mac counts from the start of this frame's header.
            let mac = off.checked_add(usize::from(u16_at(h, H3_MAC)?))?;
            let data = block.get(mac..mac.checked_add(snaplen)?)?;
            let next = u32_at(h, H3_NEXT)? as usize;
            Some((hdr, data, next))
        })();
        let Some((hdr, data, next)) = frame else {
            return Err((done, MalformedBlock));
        };
        each(&hdr, data);
        done += 1;
        if done < num as usize {
            // Zero only ends the last frame; elsewhere it would loop forever.
            if next == 0 {
                return Err((done, MalformedBlock));
            }
            off = off.checked_add(next).ok_or((done, MalformedBlock))?;
        }
    }
    Ok(done)
}

/// Length of the VLAN tag the kernel strips.
pub(crate) const VLAN_TAG_LEN: usize = 4;
/// Destination plus source MAC: where a tag goes back in.
const MACS_LEN: usize = 12;

/// Writes `frame` into `out` with the tag `(tpid, tci)` put back after the
/// two MAC addresses, as it was on the wire. Returns false (and leaves `out`
/// empty) when the frame is too short to hold the two addresses.
///
/// `out` is cleared first; it does not reallocate when its capacity is at
/// least `frame.len() + 4` (the caller sizes it to the largest frame).
pub(crate) fn reinsert_vlan(frame: &[u8], tpid: u16, tci: u16, out: &mut Vec<u8>) -> bool {
    out.clear();
    let (Some(macs), Some(rest)) = (frame.get(..MACS_LEN), frame.get(MACS_LEN..)) else {
        return false;
    };
    out.extend_from_slice(macs);
    out.extend_from_slice(&tpid.to_be_bytes());
    out.extend_from_slice(&tci.to_be_bytes());
    out.extend_from_slice(rest);
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a block the way `prb_fill_curr_block` lays it out: the block
    /// descriptor, then each frame header with its data `mac` bytes after
    /// it, linked by `tp_next_offset` (0 on the last).
    pub(crate) fn build_block(frames: &[(FrameHeader, &[u8])], size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let put32 = |b: &mut Vec<u8>, off: usize, v: u32| {
            b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        };
        let first = 48usize; // BLK_PLUS_PRIV(0): the 48-byte descriptor, aligned.
        put32(&mut b, BD_NUM_PKTS, frames.len() as u32);
        put32(&mut b, BD_FIRST_PKT, first as u32);
        let mac = 80usize; // header (48) + sockaddr_ll (20), rounded up to 16.
        let mut off = first;
        for (i, (h, data)) in frames.iter().enumerate() {
            let step = (mac + data.len()).div_ceil(16) * 16;
            let next = if i + 1 == frames.len() { 0 } else { step };
            put32(&mut b, off + H3_NEXT, next as u32);
            put32(&mut b, off + H3_SEC, h.sec);
            put32(&mut b, off + H3_NSEC, h.nsec);
            put32(&mut b, off + H3_SNAPLEN, data.len() as u32);
            put32(&mut b, off + H3_LEN, h.len);
            put32(&mut b, off + H3_STATUS, h.status);
            b[off + H3_MAC..off + H3_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            put32(&mut b, off + H3_VLAN_TCI, u32::from(h.vlan_tci));
            b[off + H3_VLAN_TPID..off + H3_VLAN_TPID + 2]
                .copy_from_slice(&h.vlan_tpid.to_ne_bytes());
            b[off + mac..off + mac + data.len()].copy_from_slice(data);
            off += step;
        }
        b
    }

    #[test]
    fn layout_matches_the_kernel_uapi() {
        // linux/if_packet.h: tpacket_block_desc is version, offset_to_priv,
        // then the v1 header whose first word is block_status; tpacket3_hdr
        // is 48 bytes (the kernel BUILD_BUG_ONs TPACKET_ALIGN(sizeof) == 48).
        assert_eq!(BD_STATUS, 8);
        assert_eq!(BD_NUM_PKTS, 12);
        assert_eq!(BD_FIRST_PKT, 16);
        assert_eq!(H3_SIZE, 48);
        assert_eq!((H3_MAC, H3_VLAN_TCI, H3_VLAN_TPID), (24, 32, 36));
    }

    #[test]
    fn walks_every_frame_in_order() {
        let a = FrameHeader {
            sec: 10,
            nsec: 20,
            len: 5,
            ..Default::default()
        };
        let b = FrameHeader {
            sec: 11,
            nsec: 999_999_999,
            len: 1500,
            status: libc::TP_STATUS_VLAN_VALID,
            vlan_tci: 7,
            ..Default::default()
        };
        let block = build_block(&[(a, b"hello"), (b, b"snapped")], 4096);
        let mut seen = Vec::new();
        let n = for_each_frame(&block, |h, d| seen.push((*h, d.to_vec())));
        assert_eq!(n, Ok(2));
        assert_eq!(seen[0], (a, b"hello".to_vec()));
        assert_eq!(seen[1], (b, b"snapped".to_vec()));
        assert_eq!(seen[1].0.stripped_vlan(), Some((0x8100, 7)));
        assert_eq!(seen[0].0.stripped_vlan(), None);
    }

    #[test]
    fn bad_offsets_stop_the_walk_without_panicking() {
        let h = FrameHeader::default();
        let good = build_block(&[(h, b"abc"), (h, b"def")], 512);
        // Snap length running past the end of the block.
        let mut bad = good.clone();
        bad[48 + H3_SNAPLEN..48 + H3_SNAPLEN + 4].copy_from_slice(&10_000u32.to_ne_bytes());
        assert_eq!(for_each_frame(&bad, |_, _| {}), Err((0, MalformedBlock)));
        // More frames claimed than linked: the second header says "last".
        let mut bad = good.clone();
        bad[BD_NUM_PKTS..BD_NUM_PKTS + 4].copy_from_slice(&3u32.to_ne_bytes());
        let mut n = 0;
        assert_eq!(
            for_each_frame(&bad, |_, _| n += 1),
            Err((2, MalformedBlock))
        );
        assert_eq!(n, 2);
        // First frame offset outside the block.
        let mut bad = good;
        bad[BD_FIRST_PKT..BD_FIRST_PKT + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(for_each_frame(&bad, |_, _| {}), Err((0, MalformedBlock)));
        // Too short to hold a descriptor at all.
        assert_eq!(
            for_each_frame(&[0u8; 7], |_, _| {}),
            Err((0, MalformedBlock))
        );
    }

    #[test]
    fn tpid_defaults_to_8021q_without_the_tpid_flag() {
        let mut h = FrameHeader {
            status: libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID,
            vlan_tci: 0x2064,
            vlan_tpid: 0x88a8,
            ..Default::default()
        };
        assert_eq!(h.stripped_vlan(), Some((0x88a8, 0x2064)));
        h.status = libc::TP_STATUS_VLAN_VALID;
        assert_eq!(h.stripped_vlan(), Some((0x8100, 0x2064)));
    }

    #[test]
    fn vlan_tag_goes_back_after_the_macs() {
        // IEEE 802.1Q clause 9: the tag (TPID, TCI) sits between the source
        // MAC and the original EtherType.
        let frame: Vec<u8> = (0u8..12).chain([0x08, 0x00, 0x45]).collect();
        let mut out = Vec::with_capacity(64);
        assert!(reinsert_vlan(&frame, 0x8100, 0x2064, &mut out));
        let want: Vec<u8> = (0u8..12)
            .chain([0x81, 0x00, 0x20, 0x64, 0x08, 0x00, 0x45])
            .collect();
        assert_eq!(out, want);
        assert!(!reinsert_vlan(&frame[..11], 0x8100, 1, &mut out));
        assert!(out.is_empty());
    }
}

//! Link-layer headers and shims: Ethernet, 802.1Q/802.1ad, MPLS, PPPoE, PPP.

use flowscope_core::{MalformedReason, Skip};

use super::bytes::{be16, chunk, pair, quad, u8_at};
use super::decode::Step;

pub(crate) const BAD_ENCAP: Skip = Skip::Malformed(MalformedReason::BadEncapsulation);

/// EtherTypes the walker knows.
pub(crate) mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MCAST: u16 = 0x8848;
    pub const PPPOE_SESSION: u16 = 0x8864;
    pub const TEB: u16 = 0x6558;
}

/// The EtherType of the Ethernet header at `off` (the frame's own header
/// when `outer`, a tunnelled one otherwise).
#[inline(always)]
pub(crate) fn ether(d: &[u8], off: usize, outer: bool) -> Result<Step, Skip> {
    let h: &[u8; 14] = chunk(d, off).ok_or(if outer {
        Skip::Malformed(MalformedReason::TruncatedLink)
    } else {
        BAD_ENCAP
    })?;
    Ok(Step::EtherType {
        ty: pair(h[12], h[13]),
        off: off + 14,
    })
}

/// An 802.1Q/802.1ad tag at `off`: VLAN id and the EtherType it wraps.
#[inline]
pub(crate) fn vlan(d: &[u8], off: usize) -> Result<(u16, u16), Skip> {
    let t: &[u8; 4] = chunk(d, off).ok_or(BAD_ENCAP)?;
    Ok((pair(t[0], t[1]) & 0x0fff, pair(t[2], t[3])))
}

/// One MPLS label stack entry at `off`: label and bottom-of-stack bit.
#[inline]
pub(crate) fn mpls_entry(d: &[u8], off: usize) -> Result<(u32, bool), Skip> {
    let e: &[u8; 4] = chunk(d, off).ok_or(BAD_ENCAP)?;
    let w = quad(e[0], e[1], e[2], e[3]);
    Ok((w >> 12, w & 0x100 != 0))
}

/// What follows the bottom of an MPLS stack at `off`. MPLS does not say, so
/// the first nibble decides (RFC 4385 §3): 4/6 are IP, 0 is the pseudowire
/// control word before an Ethernet frame, 1 is the associated channel.
#[inline]
pub(crate) fn after_mpls(d: &[u8], off: usize) -> Result<Step, Skip> {
    match u8_at(d, off).ok_or(BAD_ENCAP)? >> 4 {
        4 | 6 => Ok(Step::Ip { off, version: None }),
        0 => Ok(Step::Ether {
            off: off + 4,
            outer: false,
        }),
        1 => Err(Skip::NotIp {
            ethertype: ethertype::MPLS,
        }),
        _ => Err(BAD_ENCAP),
    }
}

/// A PPPoE session header at `off` (RFC 2516 §4): session id and the step
/// for its PPP payload.
#[inline]
pub(crate) fn pppoe(d: &[u8], off: usize) -> Result<(u16, Result<Step, Skip>), Skip> {
    let h: &[u8; 6] = chunk(d, off).ok_or(BAD_ENCAP)?;
    // Version 1, type 1, code 0 (session data).
    if h[0] != 0x11 || h[1] != 0 {
        return Err(BAD_ENCAP);
    }
    let (proto, p) = ppp_protocol(d, off + 6).ok_or(BAD_ENCAP)?;
    Ok((pair(h[2], h[3]), ppp_step(proto, p)))
}

/// The PPP protocol field at `off`, after an optional `ff 03` address and
/// control pair when `addr_ctrl`, and where the payload starts. A protocol
/// with an odd first byte is compressed to one byte (RFC 1661 §6.5).
#[inline]
pub(crate) fn ppp_protocol(d: &[u8], mut off: usize) -> Option<(u16, usize)> {
    if be16(d, off) == Some(0xff03) {
        off += 2;
    }
    let first = u8_at(d, off)?;
    if first & 1 == 1 {
        return Some((u16::from(first), off + 1));
    }
    Some((be16(d, off)?, off + 2))
}

/// The step for a PPP payload of protocol `proto` at `off`.
#[inline]
pub(crate) fn ppp_step(proto: u16, off: usize) -> Result<Step, Skip> {
    match proto {
        0x0021 => Ok(Step::Ip {
            off,
            version: Some(4),
        }),
        0x0057 => Ok(Step::Ip {
            off,
            version: Some(6),
        }),
        0x0281 | 0x0283 => Ok(Step::Mpls { off }),
        other => Err(Skip::NotIp { ethertype: other }),
    }
}

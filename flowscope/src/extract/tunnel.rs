//! Tunnel headers: GRE (with ERSPAN and PPTP), VXLAN, Geneve, GTP-U,
//! MPLS-over-UDP.
//!
//! Each parser returns `Ok(None)` when the bytes are not that tunnel (or a
//! variant flowscope does not unwrap), so the outer flow is keyed; and an
//! error when the tunnel header is valid but what follows is cut short.

use flowscope_core::{EncapLayer, Skip};

use super::bytes::{chunk, pair, quad, u8_at};
use super::decode::Step;
use super::shim::{ethertype, ppp_protocol, BAD_ENCAP};

/// A recognised tunnel: the layers it adds after the outer IP header, and
/// where the inner packet starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tunnel {
    pub layers: [Option<EncapLayer>; 2],
    pub next: Step,
}

impl Tunnel {
    fn one(layer: EncapLayer, next: Step) -> Self {
        Tunnel {
            layers: [Some(layer), None],
            next,
        }
    }
    fn two(a: EncapLayer, b: EncapLayer, next: Step) -> Self {
        Tunnel {
            layers: [Some(a), Some(b)],
            next,
        }
    }
}

/// MPLS-over-UDP destination port (RFC 7510).
pub(crate) const MPLS_UDP_PORT: u16 = 6635;

// GRE flag bits (RFC 1701 §2.1, RFC 2637 §4.1).
const GRE_C: u16 = 0x8000;
const GRE_R: u16 = 0x4000;
const GRE_K: u16 = 0x2000;
const GRE_S: u16 = 0x1000;
const GRE_A: u16 = 0x0080;

const ERSPAN_II: u16 = 0x88be;
const ERSPAN_III: u16 = 0x22eb;
const PPP_GRE: u16 = 0x880b;

/// A GRE header at `off` (IP protocol 47).
#[inline]
pub(crate) fn gre(d: &[u8], off: usize) -> Result<Option<Tunnel>, Skip> {
    let b: &[u8; 4] = chunk(d, off).ok_or(BAD_ENCAP)?;
    let flags = pair(b[0], b[1]);
    let proto = pair(b[2], b[3]);
    match flags & 7 {
        0 => gre_v0(d, off, flags, proto),
        1 => gre_pptp(d, off, flags, proto),
        _ => Ok(None),
    }
}

/// GRE version 0 (RFC 2784/2890): optional checksum, key and sequence words.
fn gre_v0(d: &[u8], off: usize, flags: u16, proto: u16) -> Result<Option<Tunnel>, Skip> {
    if flags & GRE_R != 0 {
        // RFC 1701 source routing: obsolete (RFC 2784 §2.3), not unwrapped.
        return Ok(None);
    }
    let words = [GRE_C, GRE_K, GRE_S]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count();
    let inner = off + 4 + 4 * words;
    if inner > d.len() {
        return Err(BAD_ENCAP);
    }
    let gre = EncapLayer::Gre { proto };
    let t = match proto {
        ethertype::IPV4 => Tunnel::one(
            gre,
            Step::Ip {
                off: inner,
                version: Some(4),
            },
        ),
        ethertype::IPV6 => Tunnel::one(
            gre,
            Step::Ip {
                off: inner,
                version: Some(6),
            },
        ),
        ethertype::TEB => Tunnel::one(
            gre,
            Step::Ether {
                off: inner,
                outer: false,
            },
        ),
        ethertype::MPLS | ethertype::MPLS_MCAST => Tunnel::one(gre, Step::Mpls { off: inner }),
        // Type I has no sequence number and no ERSPAN header; type II has both.
        ERSPAN_II if flags & GRE_S == 0 => Tunnel::two(
            gre,
            EncapLayer::Erspan {
                version: 1,
                session: 0,
            },
            Step::Ether {
                off: inner,
                outer: false,
            },
        ),
        ERSPAN_II => {
            let e: &[u8; 8] = chunk(d, inner).ok_or(BAD_ENCAP)?;
            if e[0] >> 4 != 1 {
                return Err(BAD_ENCAP);
            }
            let session = pair(e[2], e[3]) & 0x03ff;
            Tunnel::two(
                gre,
                EncapLayer::Erspan {
                    version: 2,
                    session,
                },
                Step::Ether {
                    off: inner + 8,
                    outer: false,
                },
            )
        }
        ERSPAN_III => return erspan3(d, inner, gre),
        _ => return Ok(None),
    };
    Ok(Some(t))
}

/// ERSPAN type III (draft-foschiano-erspan §4.3): 12-byte header, plus an
/// 8-byte platform-specific subheader when the O flag is set.
fn erspan3(d: &[u8], off: usize, gre: EncapLayer) -> Result<Option<Tunnel>, Skip> {
    let e: &[u8; 12] = chunk(d, off).ok_or(BAD_ENCAP)?;
    if e[0] >> 4 != 2 {
        return Err(BAD_ENCAP);
    }
    let session = pair(e[2], e[3]) & 0x03ff;
    let frame_type = (e[10] >> 2) & 0x1f;
    let inner = off + 12 + if e[11] & 1 != 0 { 8 } else { 0 };
    if inner > d.len() {
        return Err(BAD_ENCAP);
    }
    let next = match frame_type {
        0 => Step::Ether {
            off: inner,
            outer: false,
        },
        2 => Step::Ip {
            off: inner,
            version: None,
        },
        _ => return Ok(None),
    };
    Ok(Some(Tunnel::two(
        gre,
        EncapLayer::Erspan {
            version: 3,
            session,
        },
        next,
    )))
}

/// PPTP's enhanced GRE (RFC 2637 §4.1): key always present (payload length
/// and call id), optional sequence and acknowledgment, PPP inside.
fn gre_pptp(d: &[u8], off: usize, flags: u16, proto: u16) -> Result<Option<Tunnel>, Skip> {
    if proto != PPP_GRE || flags & (GRE_C | GRE_R) != 0 || flags & GRE_K == 0 {
        return Ok(None);
    }
    let key: &[u8; 8] = chunk(d, off).ok_or(BAD_ENCAP)?;
    let payload_len = pair(key[4], key[5]);
    let words = usize::from(flags & GRE_S != 0) + usize::from(flags & GRE_A != 0);
    let inner = off + 8 + 4 * words;
    if inner > d.len() {
        return Err(BAD_ENCAP);
    }
    // Acknowledgment-only packets carry no PPP frame: they stay GRE.
    if payload_len == 0 || flags & GRE_S == 0 {
        return Ok(None);
    }
    let (ppp, p) = ppp_protocol(d, inner).ok_or(BAD_ENCAP)?;
    let next = match ppp {
        0x0021 => Step::Ip {
            off: p,
            version: Some(4),
        },
        0x0057 => Step::Ip {
            off: p,
            version: Some(6),
        },
        // LCP, CCP, compressed or encrypted (MPPE) frames: key the GRE flow.
        _ => return Ok(None),
    };
    Ok(Some(Tunnel::one(EncapLayer::Gre { proto }, next)))
}

/// VXLAN (RFC 7348 §5): 8-byte header whose I flag must be set, then Ethernet.
#[inline]
pub(crate) fn vxlan(d: &[u8], off: usize) -> Option<Tunnel> {
    let h: &[u8; 8] = chunk(d, off)?;
    if h[0] & 0x08 == 0 {
        return None;
    }
    let vni = quad(h[4], h[5], h[6], 0) >> 8;
    Some(Tunnel::one(
        EncapLayer::Vxlan { vni },
        Step::Ether {
            off: off + 8,
            outer: false,
        },
    ))
}

/// Geneve (RFC 8926 §3.4): version 0, options in 4-byte words.
#[inline]
pub(crate) fn geneve(d: &[u8], off: usize) -> Result<Option<Tunnel>, Skip> {
    let Some(h) = chunk::<8>(d, off) else {
        return Ok(None);
    };
    if h[0] >> 6 != 0 {
        return Ok(None);
    }
    let inner = off + 8 + usize::from(h[0] & 0x3f) * 4;
    let next = match pair(h[2], h[3]) {
        ethertype::TEB => Step::Ether {
            off: inner,
            outer: false,
        },
        ethertype::IPV4 => Step::Ip {
            off: inner,
            version: Some(4),
        },
        ethertype::IPV6 => Step::Ip {
            off: inner,
            version: Some(6),
        },
        _ => return Ok(None),
    };
    if inner > d.len() {
        return Err(BAD_ENCAP);
    }
    let vni = quad(h[4], h[5], h[6], 0) >> 8;
    Ok(Some(Tunnel::one(EncapLayer::Geneve { vni }, next)))
}

/// GTP-U (3GPP TS 29.281 §5): version 1, PT 1; a G-PDU (type 255) carries
/// an IP packet after the optional fields and extension headers. Other
/// messages (echo, error indication, end marker) stay the outer UDP flow.
#[inline]
pub(crate) fn gtpu(d: &[u8], off: usize) -> Result<Option<Tunnel>, Skip> {
    let Some(h) = chunk::<8>(d, off) else {
        return Ok(None);
    };
    let flags = h[0];
    if flags >> 5 != 1 || flags & 0x10 == 0 || h[1] != 0xff {
        return Ok(None);
    }
    let teid = quad(h[4], h[5], h[6], h[7]);
    let mut p = off + 8;
    if flags & 0x07 != 0 {
        // Sequence number, N-PDU number, next extension header type.
        let opt: &[u8; 4] = chunk(d, p).ok_or(BAD_ENCAP)?;
        p += 4;
        let mut next_ext = if flags & 0x04 != 0 { opt[3] } else { 0 };
        // Each extension header is `len` 4-byte words, its last byte the next
        // type; every step advances at least 4 bytes, so this ends.
        while next_ext != 0 {
            let words = usize::from(u8_at(d, p).ok_or(BAD_ENCAP)?);
            if words == 0 {
                return Err(BAD_ENCAP);
            }
            p += words * 4;
            next_ext = u8_at(d, p - 1).ok_or(BAD_ENCAP)?;
        }
    }
    Ok(Some(Tunnel::one(
        EncapLayer::GtpU { teid },
        Step::Ip {
            off: p,
            version: None,
        },
    )))
}

/// MPLS over UDP (RFC 7510): a label stack right after the UDP header.
#[inline]
pub(crate) fn mpls_udp(d: &[u8], off: usize) -> Option<Step> {
    chunk::<4>(d, off)?;
    Some(Step::Mpls { off })
}

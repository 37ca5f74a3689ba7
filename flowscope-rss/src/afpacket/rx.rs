//! [`AfPacketSource`]: one AF_PACKET socket with a TPACKET_V3 ring, in a
//! fanout group, as a [`PacketSource`].

use std::cell::Cell;
use std::io;
use std::os::fd::OwnedFd;
use std::time::SystemTime;

use flowscope_core::{LinkType, PacketView, Timestamp};

use super::block::{self, FrameHeader, VLAN_TAG_LEN};
use super::config::AfPacketConfig;
use super::ring::MappedRing;
use super::sys;
use crate::{Batch, PacketSource, SourceStats};

/// Live capture from one interface through a memory-mapped TPACKET_V3 ring,
/// optionally as one member of a `PACKET_FANOUT` group.
///
/// Needs `CAP_NET_RAW`. Closing (drop) leaves promiscuous mode, unmaps the
/// ring and closes the socket.
#[derive(Debug)]
pub struct AfPacketSource {
    // Field order is drop order: the ring is unmapped before the socket closes.
    ring: MappedRing,
    fd: OwnedFd,
    ifindex: i32,
    iface: String,
    link_type: LinkType,
    promiscuous: bool,
    source_id: Option<u32>,
    poll_timeout_ms: i32,
    /// The next block to read; the kernel fills blocks in ring order.
    next_block: usize,
    /// Frames whose stripped VLAN tag is put back are copied here; sized
    /// once for the largest frame, so never reallocated.
    scratch: Vec<u8>,
    /// Kernel counters summed over every read (the kernel clears on read).
    totals: Cell<SourceStats>,
    malformed_blocks: u64,
}

impl AfPacketSource {
    /// Opens a receive socket on `config.interface`: TPACKET_V3 ring, filter,
    /// bind, promiscuous mode, then the fanout group (in that order, so no
    /// unfiltered packet is queued and the socket is bound before it joins).
    pub fn open(config: &AfPacketConfig) -> io::Result<Self> {
        config.validate()?;
        // Protocol 0 receives nothing until bind(), so frames from other
        // interfaces cannot slip in while the ring is being set up.
        let fd = sys::packet_socket(0)?;
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        sys::set_opt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)?;
        if let Some(filter) = &config.filter {
            sys::attach_filter(&fd, filter.instructions())?;
        }
        let frame_nr = config
            .frame_count()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "too many frames"))?;
        let req = libc::tpacket_req3 {
            tp_block_size: config.block_size,
            tp_block_nr: config.block_count,
            tp_frame_size: config.frame_size,
            tp_frame_nr: frame_nr,
            // validate() checked it fits.
            tp_retire_blk_tov: u32::try_from(config.block_timeout.as_millis()).unwrap_or(u32::MAX),
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::set_opt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        let block_size = config.block_size as usize;
        let ring = MappedRing::map(&fd, block_size, config.block_count as usize)?;

        let ifindex = sys::if_index(&config.interface)?;
        sys::bind_to(&fd, ifindex, sys::eth_p_all_be())?;
        let link_type = match sys::bound_hardware_type(&fd)? {
            // Loopback frames carry a (zeroed) Ethernet header too.
            libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => LinkType::ETHERNET,
            // tun, WireGuard, …: no link header, the IP version is the first nibble.
            libc::ARPHRD_NONE => LinkType::RAW,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "{}: hardware type {other} (ARPHRD) is not supported",
                        config.interface
                    ),
                ))
            }
        };
        let mut source = AfPacketSource {
            ring,
            fd,
            ifindex,
            iface: config.interface.clone(),
            link_type,
            promiscuous: false,
            source_id: config.source_id,
            poll_timeout_ms: i32::try_from(config.poll_timeout.as_millis()).unwrap_or(i32::MAX),
            next_block: 0,
            scratch: Vec::with_capacity(block_size + VLAN_TAG_LEN),
            totals: Cell::new(SourceStats::default()),
            malformed_blocks: 0,
        };
        if config.promiscuous {
            sys::set_opt(
                &source.fd,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                &source.promisc_request(),
            )?;
            source.promiscuous = true;
        }
        if let Some(group) = config.fanout_group {
            let arg = u32::from(group) | (config.fanout_mode.type_flags() << 16);
            sys::set_opt(&source.fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)?;
        }
        Ok(source)
    }

    /// The interface this source captures on.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// How the frames this source hands over are framed.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// Ring blocks whose layout was impossible (a frame outside the block);
    /// the frames before the bad one were handed over. Zero unless the
    /// kernel's ring ABI changed under us.
    pub fn malformed_blocks(&self) -> u64 {
        self.malformed_blocks
    }

    fn promisc_request(&self) -> libc::packet_mreq {
        libc::packet_mreq {
            mr_ifindex: self.ifindex,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        }
    }
}

/// Hands one frame to `each`, with the VLAN tag the kernel stripped put back.
fn deliver(
    hdr: &FrameHeader,
    data: &[u8],
    link_type: LinkType,
    source_id: Option<u32>,
    scratch: &mut Vec<u8>,
    each: &mut dyn FnMut(&PacketView<'_>),
) {
    let ts = Timestamp::from_secs_nanos(u64::from(hdr.sec), hdr.nsec);
    let mut wire_len = hdr.len;
    let mut bytes = data;
    if let (Some((tpid, tci)), LinkType::ETHERNET) = (hdr.stripped_vlan(), link_type) {
        if block::reinsert_vlan(data, tpid, tci, scratch) {
            bytes = scratch.as_slice();
            wire_len = wire_len.saturating_add(VLAN_TAG_LEN as u32);
        }
    }
    let mut view = PacketView::new(bytes, ts, link_type).with_wire_len(wire_len);
    if let Some(id) = source_id {
        view = view.with_source(id);
    }
    each(&view);
}

impl PacketSource for AfPacketSource {
    /// Hands over the frames of the next block the kernel has retired,
    /// waiting up to the poll timeout for one. On timeout (or a signal)
    /// returns [`Batch::Idle`] with `CLOCK_REALTIME`, the clock the kernel
    /// stamps packets with. A live source never returns [`Batch::End`]; an
    /// error pending on the socket (e.g. `ENETDOWN`) is returned.
    fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> io::Result<Batch> {
        let mut polled = false;
        loop {
            let idx = self.next_block;
            let (link_type, source_id) = (self.link_type, self.source_id);
            let scratch = &mut self.scratch;
            let walked = self.ring.with_user_block(idx, |b| {
                block::for_each_frame(b, |hdr, data| {
                    deliver(hdr, data, link_type, source_id, scratch, each)
                })
            });
            if let Some(walked) = walked {
                self.next_block = (idx + 1) % self.ring.block_count();
                let n = match walked {
                    Ok(n) => n,
                    Err((n, _)) => {
                        self.malformed_blocks += 1;
                        n
                    }
                };
                if n > 0 {
                    return Ok(Batch::Packets(n));
                }
                continue;
            }
            // One poll per call: if poll says readable but the block we expect
            // is not ours yet, report idle rather than spin here.
            if polled {
                return Ok(Batch::Idle {
                    now: realtime_now(),
                });
            }
            match sys::poll_readable(&self.fd, self.poll_timeout_ms)? {
                sys::Readiness::Readable => polled = true,
                sys::Readiness::TimedOut => {
                    return Ok(Batch::Idle {
                        now: realtime_now(),
                    })
                }
                sys::Readiness::Error => {
                    return Err(sys::take_socket_error(&self.fd)?.unwrap_or_else(|| {
                        io::Error::other(format!("{}: poll reported an error", self.iface))
                    }))
                }
            }
        }
    }

    /// Kernel counters since the socket opened (summed here: the kernel
    /// clears them on every read). `packets` counts every packet that passed
    /// the filter, *including* the dropped ones (the kernel adds `tp_drops`
    /// into `tp_packets`), so the packets delivered are `packets - drops`.
    /// Should the kernel read fail, the totals so far are returned.
    fn stats(&self) -> SourceStats {
        let mut t = self.totals.get();
        if let Ok(st) = sys::packet_stats_v3(&self.fd) {
            t.packets += u64::from(st.tp_packets);
            t.drops += u64::from(st.tp_drops);
            t.freezes += u64::from(st.tp_freeze_q_cnt);
            self.totals.set(t);
        }
        t
    }
}

impl Drop for AfPacketSource {
    fn drop(&mut self) {
        if self.promiscuous {
            // Best effort: the kernel also drops the membership when the
            // socket closes, right after this.
            let _ = sys::set_opt(
                &self.fd,
                libc::SOL_PACKET,
                libc::PACKET_DROP_MEMBERSHIP,
                &self.promisc_request(),
            );
        }
    }
}

/// `CLOCK_REALTIME` (what `SystemTime` reads on Linux) as a [`Timestamp`].
fn realtime_now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afpacket::block::tests::build_block;

    #[test]
    fn deliver_puts_the_stripped_tag_back_and_counts_it_on_the_wire() {
        let frame: Vec<u8> = (1u8..=12).chain([0x08, 0x00, 0x45, 0]).collect();
        let tagged = FrameHeader {
            sec: 1_700_000_000,
            nsec: 5,
            len: 16,
            status: libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID,
            vlan_tci: 0x0064,
            vlan_tpid: 0x88a8,
        };
        let plain = FrameHeader {
            len: 100, // snapped: 16 of 100 bytes kept
            ..tagged
        };
        let plain = FrameHeader { status: 0, ..plain };
        let block = build_block(&[(tagged, &frame), (plain, &frame)], 4096);
        let mut scratch = Vec::with_capacity(4096 + 4);
        let mut got = Vec::new();
        let n = block::for_each_frame(&block, |h, d| {
            deliver(h, d, LinkType::ETHERNET, Some(3), &mut scratch, &mut |v| {
                got.push((v.data.to_vec(), v.wire_len, v.ts, v.source))
            })
        });
        assert_eq!(n, Ok(2));
        let want: Vec<u8> = (1u8..=12)
            .chain([0x88, 0xa8, 0x00, 0x64, 0x08, 0x00, 0x45, 0])
            .collect();
        let ts = Timestamp::from_secs_nanos(1_700_000_000, 5);
        assert_eq!(got[0], (want, 20, ts, Some(3)));
        assert_eq!(got[1], (frame.clone(), 100, ts, Some(3)));
        // Not Ethernet: nothing is inserted.
        got.clear();
        let _ = block::for_each_frame(&block, |h, d| {
            deliver(h, d, LinkType::RAW, None, &mut scratch, &mut |v| {
                got.push((v.data.to_vec(), v.wire_len, v.ts, v.source))
            })
        });
        assert_eq!(got[0], (frame, 16, ts, None));
    }
}

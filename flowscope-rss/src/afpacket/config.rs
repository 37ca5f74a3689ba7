//! What an [`AfPacketSource`](super::AfPacketSource) is opened with.

use std::io;
use std::time::Duration;

use super::bpf::BpfProgram;
use super::sys;

/// How the kernel spreads a fanout group's packets over its sockets, in
/// Suricata's `cluster-type` vocabulary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FanoutMode {
    /// `cluster_flow`: `PACKET_FANOUT_HASH` with `PACKET_FANOUT_FLAG_DEFRAG`.
    /// The kernel's symmetric flow hash sends both directions of a flow to
    /// the same socket; IPv4 fragments are reassembled before hashing (and
    /// delivered reassembled), so they stay with their flow.
    #[default]
    ClusterFlow,
    /// `cluster_cpu`: `PACKET_FANOUT_CPU`, the CPU that received the packet.
    /// Flow-consistent only if the NIC's RSS is symmetric and each queue's
    /// interrupt is pinned to the worker's CPU.
    ClusterCpu,
    /// `cluster_qm`: `PACKET_FANOUT_QM`, the NIC receive queue the packet
    /// was recorded on (one worker per queue; needs symmetric RSS too).
    ClusterQm,
}

impl FanoutMode {
    /// The `type | flags` half of the `PACKET_FANOUT` argument.
    pub(crate) fn type_flags(self) -> u32 {
        match self {
            FanoutMode::ClusterFlow => libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG,
            FanoutMode::ClusterCpu => libc::PACKET_FANOUT_CPU,
            FanoutMode::ClusterQm => libc::PACKET_FANOUT_QM,
        }
    }
}

/// Settings for one AF_PACKET receive socket. Start from
/// [`AfPacketConfig::new`] and adjust with the setters.
///
/// The ring is `block_size × block_count` bytes of kernel memory per socket;
/// the kernel fills one block at a time and hands it to userspace when it is
/// full or `block_timeout` after its first packet, whichever comes first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AfPacketConfig {
    /// Interface to capture on.
    pub interface: String,
    /// Fanout group to join (`None`: capture alone). Sockets opened with the
    /// same id in the same network namespace share the traffic.
    pub fanout_group: Option<u16>,
    /// How the fanout group spreads packets.
    pub fanout_mode: FanoutMode,
    /// Bytes per ring block (a multiple of the page size). It also bounds
    /// the largest frame captured whole.
    pub block_size: u32,
    /// Blocks in the ring.
    pub block_count: u32,
    /// Frame slot size the kernel checks the request with (a multiple of 16,
    /// at most `block_size`); with TPACKET_V3 frames are packed, so this
    /// does not limit the snap length.
    pub frame_size: u32,
    /// How long a partly filled block waits before the kernel hands it over
    /// (`tp_retire_blk_tov`, whole milliseconds; zero lets the kernel pick
    /// from the link speed).
    pub block_timeout: Duration,
    /// Put the interface in promiscuous mode while the socket is open.
    pub promiscuous: bool,
    /// Classic BPF filter run by the kernel before a frame takes ring space.
    pub filter: Option<BpfProgram>,
    /// How long `next_batch` waits for a block before reporting an idle tick.
    pub poll_timeout: Duration,
    /// Tag every packet with this source number (the worker index).
    pub source_id: Option<u32>,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            interface: String::new(),
            fanout_group: None,
            fanout_mode: FanoutMode::ClusterFlow,
            // 1 MiB × 32 = 32 MiB per socket: ~20 ms of a busy 10 Gbit/s
            // link per worker before drops.
            block_size: 1 << 20,
            block_count: 32,
            frame_size: 2048,
            // Suricata's default block-timeout.
            block_timeout: Duration::from_millis(10),
            promiscuous: false,
            filter: None,
            poll_timeout: Duration::from_millis(100),
            source_id: None,
        }
    }
}

impl AfPacketConfig {
    /// Defaults for capturing on `interface`.
    pub fn new(interface: impl Into<String>) -> Self {
        AfPacketConfig {
            interface: interface.into(),
            ..Default::default()
        }
    }
    /// Joins fanout group `group` in `mode`.
    pub fn fanout(mut self, group: u16, mode: FanoutMode) -> Self {
        self.fanout_group = Some(group);
        self.fanout_mode = mode;
        self
    }
    /// Sets the ring geometry: `block_count` blocks of `block_size` bytes.
    pub fn ring(mut self, block_size: u32, block_count: u32) -> Self {
        self.block_size = block_size;
        self.block_count = block_count;
        self
    }
    /// Sets the frame slot size.
    pub fn frame_size(mut self, frame_size: u32) -> Self {
        self.frame_size = frame_size;
        self
    }
    /// Sets the block retire timeout.
    pub fn block_timeout(mut self, timeout: Duration) -> Self {
        self.block_timeout = timeout;
        self
    }
    /// Turns promiscuous mode on or off.
    pub fn promiscuous(mut self, on: bool) -> Self {
        self.promiscuous = on;
        self
    }
    /// Sets the kernel filter.
    pub fn filter(mut self, program: BpfProgram) -> Self {
        self.filter = Some(program);
        self
    }
    /// Sets the idle poll timeout.
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }
    /// Tags packets with source number `id`.
    pub fn source_id(mut self, id: u32) -> Self {
        self.source_id = Some(id);
        self
    }

    /// Checks what the kernel would refuse, with a clearer message than
    /// `EINVAL`.
    pub fn validate(&self) -> io::Result<()> {
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.interface.is_empty() || self.interface.len() >= libc::IFNAMSIZ {
            return bad(format!(
                "interface name {:?} must be 1 to {} bytes",
                self.interface,
                libc::IFNAMSIZ - 1
            ));
        }
        let page = sys::page_size();
        if self.block_size == 0 || !(self.block_size as usize).is_multiple_of(page) {
            return bad(format!(
                "block size {} is not a positive multiple of the page size {page}",
                self.block_size
            ));
        }
        if self.block_count == 0 {
            return bad("block count must be at least 1".into());
        }
        if (self.frame_size as usize) < libc::TPACKET3_HDRLEN
            || !self.frame_size.is_multiple_of(16)
            || self.frame_size > self.block_size
        {
            return bad(format!(
                "frame size {} must be a multiple of 16 between {} and the block size",
                self.frame_size,
                libc::TPACKET3_HDRLEN
            ));
        }
        let total = u64::from(self.block_size) * u64::from(self.block_count);
        if usize::try_from(total).is_err() || total > isize::MAX as u64 {
            return bad(format!("ring of {total} bytes does not fit in memory"));
        }
        if self.frame_count().is_none() {
            return bad("too many frames in the ring".into());
        }
        if u32::try_from(self.block_timeout.as_millis()).is_err() {
            return bad("block timeout too long".into());
        }
        Ok(())
    }

    /// `tp_frame_nr`: frame slots per block times blocks.
    pub(crate) fn frame_count(&self) -> Option<u32> {
        (self.block_size / self.frame_size.max(1)).checked_mul(self.block_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_setters_apply() {
        let c = AfPacketConfig::new("eth0")
            .fanout(7, FanoutMode::ClusterQm)
            .ring(1 << 16, 4)
            .source_id(3);
        assert!(c.validate().is_ok());
        assert_eq!(
            (
                c.fanout_group,
                c.fanout_mode,
                c.block_size,
                c.block_count,
                c.source_id
            ),
            (Some(7), FanoutMode::ClusterQm, 65536, 4, Some(3))
        );
        assert_eq!(c.frame_count(), Some(65536 / 2048 * 4));
    }

    #[test]
    fn refuses_what_the_kernel_would() {
        let ok = AfPacketConfig::new("eth0");
        for c in [
            AfPacketConfig::new(""),
            AfPacketConfig::new("sixteen-chars-xx"),
            ok.clone().ring(4097, 4),
            ok.clone().ring(0, 4),
            ok.clone().ring(1 << 16, 0),
            ok.clone().frame_size(24),
            ok.clone().frame_size(2050),
            ok.clone().ring(4096, 1).frame_size(8192),
        ] {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn fanout_arguments_match_if_packet_h() {
        // linux/if_packet.h: HASH 0, CPU 2, QM 5, FLAG_DEFRAG 0x8000.
        assert_eq!(FanoutMode::ClusterFlow.type_flags(), 0x8000);
        assert_eq!(FanoutMode::ClusterCpu.type_flags(), 2);
        assert_eq!(FanoutMode::ClusterQm.type_flags(), 5);
    }
}

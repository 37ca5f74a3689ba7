//! The bypass policy against a stand-in for the kernel: a fake map that
//! the test itself "drops" frames into, keyed from the test's own
//! knowledge of each frame (not from the code under test), so that a flow
//! run with bypass can be compared with the same frames run without.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::test_frames::*;
use flowscope::driver::SessionConfig;
use flowscope_core::{FlowStats, LinkType, PacketView, Timestamp};
use flowscope_prefilter::PrefilterError;

/// The fake kernel: one counter pair per inserted direction.
#[derive(Default)]
struct Kernel {
    entries: HashMap<BypassFlow, FlowCounters>,
    inserts: u64,
}

#[derive(Clone, Default)]
struct FakeMaps(Arc<Mutex<Kernel>>);

impl FakeMaps {
    fn k(&self) -> std::sync::MutexGuard<'_, Kernel> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The XDP program's job: a frame of direction `dir` is dropped and
    /// counted when that direction is in the map.
    fn drops(&self, dir: &BypassFlow, frame_len: usize) -> bool {
        match self.k().entries.get_mut(dir) {
            Some(c) => {
                c.packets += 1;
                c.bytes += frame_len as u64;
                true
            }
            None => false,
        }
    }

    fn counters(&self, flow: &BypassFlow) -> Option<BidiCounters> {
        let k = self.k();
        let f = k.entries.get(flow).copied();
        let r = k.entries.get(&flow.reversed()).copied();
        if f.is_none() && r.is_none() {
            return None;
        }
        Some(BidiCounters {
            forward: f.unwrap_or_default(),
            reverse: r.unwrap_or_default(),
        })
    }
}

impl BypassMaps for FakeMaps {
    fn insert(&mut self, flow: &BypassFlow) -> Result<(), PrefilterError> {
        let mut k = self.k();
        k.inserts += 1;
        k.entries.entry(*flow).or_default();
        k.entries.entry(flow.reversed()).or_default();
        Ok(())
    }

    fn expire_idle(
        &mut self,
        flow: &BypassFlow,
        last_seen: &BidiCounters,
    ) -> Result<Expiry, PrefilterError> {
        let Some(now) = self.counters(flow) else {
            return Ok(Expiry::Missing);
        };
        if now != *last_seen {
            return Ok(Expiry::Active(now));
        }
        self.remove(flow)?;
        Ok(Expiry::Expired(now))
    }

    fn remove(&mut self, flow: &BypassFlow) -> Result<Option<BidiCounters>, PrefilterError> {
        let c = self.counters(flow);
        let mut k = self.k();
        k.entries.remove(flow);
        k.entries.remove(&flow.reversed());
        Ok(c)
    }
}

const CLIENT: [u8; 4] = [198, 18, 0, 1];
const SERVER: [u8; 4] = [198, 19, 0, 2];

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

/// One direction of the test flow, as the XDP program would key it.
fn dir(reply: bool, vlan: u16) -> BypassFlow {
    let f = BypassFlow {
        src: ip(CLIENT),
        dst: ip(SERVER),
        src_port: 40000,
        dst_port: 53,
        proto: 17,
        vlan,
    };
    if reply {
        f.reversed()
    } else {
        f
    }
}

/// An 802.1Q tag (TPID 0x8100, PCP 5 so the TCI is not the bare id).
fn tagged(vlan: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00];
    f.extend_from_slice(&((5 << 13) | vlan).to_be_bytes());
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A minimal DNS query (RFC 1035 §4.1) or its response header: one
/// question `a.` type A.
fn dns(response: bool) -> Vec<u8> {
    let flags: u16 = if response { 0x8180 } else { 0x0100 };
    let mut m = vec![0x12, 0x34];
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
    m
}

/// `n` frames alternating query / reply (query first), `payload` bytes of
/// UDP payload each (the first two are a real DNS query and response),
/// 1 ms apart from 1 s; VLAN-tagged when `vlan` is non-zero.
fn frames(n: usize, payload: usize, vlan: u16) -> Vec<(bool, Timestamp, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let reply = i % 2 == 1;
            let mut body = if i < 2 { dns(reply) } else { Vec::new() };
            body.resize(payload.max(body.len()), 0xab);
            let (s, d, sp, dp) = if reply {
                (SERVER, CLIENT, 53, 40000)
            } else {
                (CLIENT, SERVER, 40000, 53)
            };
            let ipp = ipv4(s, d, UDP, i as u16, 0, false, &udp(sp, dp, &body));
            let f = if vlan == 0 {
                eth(0x0800, &ipp)
            } else {
                tagged(vlan, 0x0800, &ipp)
            };
            let ts = Timestamp::from_micros(1_000_000 + i as u64 * 1000);
            (reply, ts, f)
        })
        .collect()
}

fn config(udp_timeout: Duration) -> SessionConfig {
    let mut c = SessionConfig::default();
    c.track.udp_timeout = udp_timeout;
    c
}

fn pv(f: &[u8], ts: Timestamp) -> PacketView<'_> {
    PacketView::new(f, ts, LinkType::ETHERNET)
}

/// The flow's record without bypass.
fn plain(frames: &[(bool, Timestamp, Vec<u8>)]) -> FlowRecord<FiveTuple> {
    let mut d: SessionDriver<AppMessage> =
        SessionDriver::with_default_parsers(config(Duration::from_secs(60)));
    let mut out = Vec::new();
    let mut sink = |ev: DriverEvent<'_, AppMessage>| {
        if let DriverEvent::Flow {
            event: FlowEvent::Ended(r),
            ..
        } = ev
        {
            out.push(*r);
        }
    };
    for (_, ts, f) in frames {
        d.process(&pv(f, *ts), &mut sink);
    }
    d.finish(&mut sink);
    assert_eq!(out.len(), 1);
    out.remove(0)
}

/// What a bypass run produced.
#[derive(Default)]
struct Out {
    plain_ends: Vec<FlowRecord<FiveTuple>>,
    bypassed: Vec<BypassedFlow>,
    userspace_packets: u64,
}

impl Out {
    fn sink(&mut self) -> impl FnMut(BypassOutput<'_, AppMessage>) + '_ {
        |o| match o {
            BypassOutput::Event(DriverEvent::Flow {
                event: FlowEvent::Ended(r),
                ..
            }) => self.plain_ends.push(*r),
            BypassOutput::Ended(b) => self.bypassed.push(*b),
            _ => {}
        }
    }
}

struct Run {
    b: Bypasser<AppMessage>,
    d: SessionDriver<AppMessage>,
    kernel: FakeMaps,
    vlan: u16,
    out: Out,
}

impl Run {
    fn new(policy: BypassPolicy<AppMessage>, udp_timeout: Duration, vlan: u16) -> Run {
        let kernel = FakeMaps::default();
        let c = config(udp_timeout);
        Run {
            b: Bypasser::new(
                policy,
                Box::new(kernel.clone()),
                c.extract.clone(),
                &c.track,
            ),
            d: SessionDriver::with_default_parsers(c),
            kernel,
            vlan,
            out: Out::default(),
        }
    }

    /// Each frame goes through the fake kernel first, then (if it passed)
    /// to the worker.
    fn feed(&mut self, frames: &[(bool, Timestamp, Vec<u8>)]) {
        for (reply, ts, f) in frames {
            if self.kernel.drops(&dir(*reply, self.vlan), f.len()) {
                continue;
            }
            self.out.userspace_packets += 1;
            self.b
                .process(&mut self.d, &pv(f, *ts), &mut self.out.sink());
        }
    }

    fn finish(&mut self) {
        self.b.finish(&mut self.d, &mut self.out.sink());
    }
}

fn assert_same_counts(got: &FlowStats, want: &FlowStats) {
    for (g, w) in [
        (&got.initiator, &want.initiator),
        (&got.responder, &want.responder),
    ] {
        assert_eq!(g.packets, w.packets);
        assert_eq!(g.frame_bytes, w.frame_bytes);
        assert_eq!(g.ip_bytes, w.ip_bytes);
    }
}

#[test]
fn depth_bypass_keeps_the_flow_counts() {
    for vlan in [0u16, 709] {
        // 100-byte payloads: the client passes 250 bytes at its 3rd frame
        // (frame index 4), so frames 5.. are dropped in the kernel.
        let fr = frames(12, 100, vlan);
        let want = plain(&fr);
        let mut run = Run::new(
            BypassPolicy::new().after_bytes(250),
            Duration::from_secs(60),
            vlan,
        );
        run.feed(&fr);
        assert_eq!(run.out.userspace_packets, 5, "vlan {vlan}");
        run.finish();
        assert!(run.out.plain_ends.is_empty());
        assert_eq!(run.out.bypassed.len(), 1);
        let b = run.out.bypassed[0];
        // Frames 5..11: 3 queries (6, 8, 10) and 4 replies (5, 7, 9, 11).
        assert_eq!(b.bypassed.initiator.packets, 3);
        assert_eq!(b.bypassed.responder.packets, 4);
        let frame_len = fr[5].2.len() as u64;
        assert_eq!(b.bypassed.responder.bytes, 4 * frame_len);
        assert_same_counts(&b.record.stats, &want.stats);
        assert_eq!(run.b.stats().flows, 1);
        assert_eq!(run.b.stats().packets, 7);
        assert!(run.kernel.k().entries.is_empty(), "entries removed");
    }
}

#[test]
fn verdict_bypasses_from_the_packet_that_asked() {
    // The verdict fires on the first DNS message (the query, frame 0):
    // everything after it is dropped.
    let fr = frames(6, 40, 0);
    let want = plain(&fr);
    let seen = Arc::new(Mutex::new(0u32));
    let s = Arc::clone(&seen);
    let policy = BypassPolicy::new().with_verdict(move |_, ev| {
        *s.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        matches!(ev, SessionEvent::Message(_))
    });
    let mut run = Run::new(policy, Duration::from_secs(60), 0);
    run.feed(&fr);
    assert_eq!(run.out.userspace_packets, 1);
    run.finish();
    let b = run
        .out
        .bypassed
        .first()
        .copied()
        .expect("one bypassed flow");
    assert_eq!(b.bypassed.initiator.packets, 2);
    assert_eq!(b.bypassed.responder.packets, 3);
    assert_same_counts(&b.record.stats, &want.stats);
    assert!(*seen.lock().unwrap_or_else(|p| p.into_inner()) >= 1);
}

#[test]
fn an_idle_flow_still_moving_in_the_kernel_is_held() {
    let t = Duration::from_secs(1);
    let fr = frames(4, 100, 0);
    let mut run = Run::new(BypassPolicy::new().after_bytes(50), t, 0);
    // Frame 0 (100 bytes > 50) triggers the bypass; 1..3 are dropped.
    run.feed(&fr);
    assert_eq!(run.out.userspace_packets, 1);
    // The tracker's idle timeout passes; the kernel counted since the
    // insert, so the end is held, not emitted.
    run.b.advance_to(
        &mut run.d,
        Timestamp::from_secs_nanos(2, 500_000_000),
        &mut run.out.sink(),
    );
    assert!(run.out.bypassed.is_empty() && run.out.plain_ends.is_empty());
    assert_eq!(run.b.stats().held, 1);
    // More traffic in the kernel before the next look: still held.
    let late: Vec<_> = frames(8, 100, 0).into_iter().skip(4).collect();
    for (reply, _, f) in &late {
        assert!(run.kernel.drops(&dir(*reply, 0), f.len()));
    }
    run.b.advance_to(
        &mut run.d,
        Timestamp::from_secs_nanos(3, 600_000_000),
        &mut run.out.sink(),
    );
    assert!(run.out.bypassed.is_empty());
    // Nothing moved for a whole timeout: emitted with every count.
    run.b.advance_to(
        &mut run.d,
        Timestamp::from_secs_nanos(4, 700_000_000),
        &mut run.out.sink(),
    );
    assert_eq!(run.out.bypassed.len(), 1);
    let b = run.out.bypassed[0];
    let all: Vec<_> = frames(8, 100, 0);
    let want = plain(&all);
    assert_same_counts(&b.record.stats, &want.stats);
    assert!(run.kernel.k().entries.is_empty());
    assert_eq!(run.b.active(), 0);
}

#[test]
fn an_idle_flow_quiet_in_the_kernel_ends_at_once() {
    let fr = frames(1, 100, 0);
    let mut run = Run::new(
        BypassPolicy::new().after_bytes(50),
        Duration::from_secs(1),
        0,
    );
    run.feed(&fr);
    assert_eq!(run.kernel.k().inserts, 1);
    run.b.advance_to(
        &mut run.d,
        Timestamp::from_secs_nanos(3, 0),
        &mut run.out.sink(),
    );
    assert_eq!(run.out.bypassed.len(), 1);
    assert_eq!(run.out.bypassed[0].bypassed, BypassedCounts::default());
    assert_eq!(run.b.stats().held, 0);
}

#[test]
fn without_a_rule_nothing_is_bypassed() {
    let fr = frames(6, 100, 0);
    let mut run = Run::new(BypassPolicy::new(), Duration::from_secs(60), 0);
    run.feed(&fr);
    run.finish();
    assert_eq!(run.out.userspace_packets, 6);
    assert_eq!(run.out.plain_ends.len(), 1);
    assert!(run.out.bypassed.is_empty());
    assert_eq!(run.kernel.k().inserts, 0);
}

#[test]
fn ip_bytes_subtract_the_link_header_per_frame() {
    // 3 forward frames of 114 bytes behind a 18-byte tagged header: IP
    // bytes are 3 × (114 − 18) = 288; 1 reverse frame of 60 bytes: 42.
    let mut rec = FlowRecord::new(
        FiveTuple {
            lo_addr: ip(CLIENT),
            hi_addr: ip(SERVER),
            lo_port: 40000,
            hi_port: 53,
            proto: 17,
        },
        FlowId(1),
        Orientation::HiToLo,
        L4Proto::Udp,
    );
    let c = BidiCounters {
        forward: FlowCounters {
            packets: 3,
            bytes: 342,
        },
        reverse: FlowCounters {
            packets: 1,
            bytes: 60,
        },
    };
    // Forward is LoToHi, the initiator is HiToLo: forward is the responder.
    let got = add_bypassed(&mut rec, Orientation::LoToHi, 18, &c);
    assert_eq!(rec.stats.responder.ip_bytes, 288);
    assert_eq!(rec.stats.responder.frame_bytes, 342);
    assert_eq!(rec.stats.initiator.ip_bytes, 42);
    assert_eq!(got.responder.packets, 3);
    assert_eq!(got.initiator.packets, 1);
}

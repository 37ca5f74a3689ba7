//! `flow-replay --iface` logic against a fake frame sink and a fake clock:
//! pacing (timestamps, --speed, --pps, --mbps), --loop, ENOBUFS retries,
//! EMSGSIZE counting, link-type handling, and the report.
// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod replay_support;

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use flowscope::capture::CaptureReader;
use flowscope_cli::replay::clock::ManualClock;
use flowscope_cli::replay::link::{SYNTH_DST_MAC, SYNTH_SRC_MAC};
use flowscope_cli::replay::pace::{Rate, Speed};
use flowscope_cli::replay::remap::{Remapper, Verdict};
use flowscope_cli::replay::transmit::{
    BatchOutcome, FrameSink, Pacing, Transmitter, TxError, TxOptions, BATCH,
};
use flowscope_core::LinkType;
use replay_support::*;

/// Records frames; fails sends with the scripted errnos first.
#[derive(Default)]
struct FakeSink {
    frames: Vec<Vec<u8>>,
    script: VecDeque<i32>,
}

impl FrameSink for FakeSink {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        if let Some(e) = self.script.pop_front() {
            return Err(io::Error::from_raw_os_error(e));
        }
        self.frames.push(frame.to_vec());
        Ok(())
    }
}

fn tx(pacing: Pacing) -> Transmitter<FakeSink, ManualClock> {
    Transmitter::new(
        FakeSink::default(),
        ManualClock::new(),
        TxOptions::new(pacing),
    )
}

fn pass(t: &mut Transmitter<FakeSink, ManualClock>, bytes: &[u8]) -> Result<(), TxError> {
    let mut r = CaptureReader::new(bytes).unwrap();
    t.run_pass(&mut r).map(|d| assert!(d.is_none()))
}

/// Four UDP frames at 0, 1, 1.5 and 4 s.
fn four() -> Vec<u8> {
    pcap(
        LinkType::ETHERNET,
        &[
            (0.0, udp(A, 1, B, 2, b"a")),
            (1.0, udp(A, 1, B, 2, b"b")),
            (1.5, udp(B, 2, A, 1, b"c")),
            (4.0, udp(A, 1, B, 2, b"d")),
        ],
    )
}

#[test]
fn timestamps_paced_and_scaled() {
    let mut t = tx(Pacing::Timestamps(Speed::Factor(1.0)));
    pass(&mut t, &four()).unwrap();
    let ms = Duration::from_millis;
    // Gaps between the capture timestamps: 1 s, 0.5 s, 2.5 s.
    assert_eq!(t.clock().sleeps(), &[ms(1000), ms(500), ms(2500)]);
    let mut t = tx(Pacing::Timestamps(Speed::Factor(10.0)));
    pass(&mut t, &four()).unwrap();
    assert_eq!(t.clock().sleeps(), &[ms(100), ms(50), ms(250)]);
    let r = t.report();
    assert_eq!((r.packets_read, r.packets_sent, r.failed()), (4, 4, 0));
    assert_eq!(r.elapsed, ms(400));
    // Frames go out unchanged, in order.
    let orig: Vec<Vec<u8>> = {
        let b = four();
        let mut rd = CaptureReader::new(&b[..]).unwrap();
        let mut v = vec![];
        while let Some(p) = rd.next_packet().unwrap() {
            v.push(p.data.to_vec());
        }
        v
    };
    assert_eq!(t.sink().frames, orig);
    assert_eq!(
        r.bytes_sent,
        orig.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    let mut t = tx(Pacing::Timestamps(Speed::Max));
    pass(&mut t, &four()).unwrap();
    assert!(t.clock().sleeps().is_empty());
}

#[test]
fn rate_limits_override_timestamps() {
    let mut t = tx(Pacing::Rate(Rate::Pps(100.0)));
    pass(&mut t, &four()).unwrap();
    // 100 pps: one frame every 10 ms, whatever the capture says.
    let ms = Duration::from_millis;
    assert_eq!(t.clock().sleeps(), &[ms(10), ms(10), ms(10)]);
    assert!((t.report().pps() - 4.0 / 0.03).abs() < 1e-6);
    // 1 Mbit/s: each frame waits for the bits of the one before it.
    let mut t = tx(Pacing::Rate(Rate::Mbps(1.0)));
    pass(&mut t, &four()).unwrap();
    let len = t.sink().frames[0].len() as u64; // all four are the same size
    let per = Duration::from_nanos(len * 8 * 1000);
    assert_eq!(t.clock().sleeps(), &[per, per, per]);
}

#[test]
fn loops_continue_the_schedule() {
    let mut t = tx(Pacing::Timestamps(Speed::Factor(1.0)));
    pass(&mut t, &four()).unwrap();
    pass(&mut t, &four()).unwrap();
    let r = t.report();
    assert_eq!((r.passes, r.packets_sent), (2, 8));
    // The second pass starts at once after the first: no 4 s jump back.
    let total: Duration = t.clock().sleeps().iter().sum();
    assert_eq!(total, Duration::from_secs(8));
}

#[test]
fn enobufs_is_retried_emsgsize_is_counted() {
    // First frame: ENOBUFS twice then accepted; second: EMSGSIZE (not retried).
    let mut sink = FakeSink::default();
    sink.script
        .extend([libc::ENOBUFS, libc::ENOBUFS, libc::EMSGSIZE]);
    let mut o = TxOptions::new(Pacing::Timestamps(Speed::Max));
    o.enobufs_retries = 5;
    let mut t = Transmitter::new(sink, ManualClock::new(), o);
    pass(&mut t, &four()).unwrap();
    let r = t.report();
    assert_eq!(r.enobufs_retries, 2);
    assert_eq!(r.packets_sent, 3);
    assert_eq!(r.failed_by_errno.get(&libc::EMSGSIZE), Some(&1));
    assert_eq!(t.clock().sleeps().len(), 2, "a backoff per retry");
    let j = r.to_json();
    assert_eq!(j["failed_by_errno"]["EMSGSIZE"], 1);
    assert_eq!(j["packets_sent"], 3);

    // Retries are bounded: ENOBUFS past them counts as a failure.
    let mut sink = FakeSink::default();
    sink.script.extend([libc::ENOBUFS; 4]);
    let mut o = TxOptions::new(Pacing::Timestamps(Speed::Max));
    o.enobufs_retries = 3;
    let mut t = Transmitter::new(sink, ManualClock::new(), o);
    pass(&mut t, &four()).unwrap();
    let r = t.report();
    assert_eq!((r.enobufs_retries, r.packets_sent), (3, 3));
    assert_eq!(r.failed_by_errno.get(&libc::ENOBUFS), Some(&1));
    let mut text = Vec::new();
    r.write_text(&mut text).unwrap();
    assert!(String::from_utf8(text).unwrap().contains("ENOBUFS"));
}

#[test]
fn interface_gone_stops() {
    let mut sink = FakeSink::default();
    sink.script.push_back(libc::ENXIO);
    let mut t = Transmitter::new(
        sink,
        ManualClock::new(),
        TxOptions::new(Pacing::Timestamps(Speed::Max)),
    );
    assert!(matches!(pass(&mut t, &four()), Err(TxError::Interface(_))));
    assert_eq!(t.report().packets_sent, 0);
}

#[test]
fn raw_ip_gets_an_ethernet_header_other_links_refused() {
    let frame = udp(A, 1, B, 2, b"x");
    let raw = pcap(LinkType::RAW, &[(0.0, frame[14..].to_vec())]);
    let mut t = tx(Pacing::Timestamps(Speed::Max));
    pass(&mut t, &raw).unwrap();
    let sent = &t.sink().frames[0];
    assert_eq!(&sent[..6], &SYNTH_DST_MAC);
    assert_eq!(&sent[6..12], &SYNTH_SRC_MAC);
    assert_eq!(&sent[12..], &frame[12..], "EtherType 0x0800 and the packet");
    let sll = pcap(LinkType::LINUX_SLL, &[(0.0, vec![0; 40])]);
    let mut t = tx(Pacing::Timestamps(Speed::Max));
    assert!(matches!(
        pass(&mut t, &sll),
        Err(TxError::UnsupportedLink(LinkType::LINUX_SLL))
    ));
}

#[test]
fn remapped_frames_are_sent() {
    let mut t = tx(Pacing::Timestamps(Speed::Max))
        .with_remapper(Remapper::new(Some("198.18.0.0/15".parse().unwrap()), None));
    let gre = ipv4_frame(A, B, 47, vec![0, 0, 0x08, 0, 0x45, 0, 0, 0], 0);
    let bytes = pcap(
        LinkType::ETHERNET,
        &[(0.0, udp(A, 1, B, 2, b"a")), (0.1, gre)],
    );
    pass(&mut t, &bytes).unwrap();
    let r = t.report();
    assert_eq!((r.packets_sent, r.remap_refused), (1, 1));
    let f = &t.sink().frames[0];
    // 10.0.0.1 -> 198.18.0.1 (host bits kept), 10.0.0.2 -> 198.18.0.2.
    assert_eq!(&f[26..34], &[198, 18, 0, 1, 198, 18, 0, 2]);
    // And the sent frame passes the remapper's own idempotence: mapping
    // again is stable (same table), and it is still IP.
    let mut again = f.clone();
    let mut r2 = Remapper::new(Some("198.18.0.0/15".parse().unwrap()), None);
    assert_eq!(
        r2.remap_frame(LinkType::ETHERNET, &mut again),
        Verdict::Rewritten
    );
    assert_eq!(&again, f, "addresses already in range keep their host bits");
}

/// A sink with `sendmmsg(2)`'s behaviour: it takes at most `limit` frames a
/// call, and each call's outcome can be scripted (`Some(n, err)`: accept n
/// frames then fail with `err`, or stop silently when `err` is None, as
/// sendmmsg does after a partial send).
struct BatchSink {
    limit: usize,
    frames: Vec<Vec<u8>>,
    calls: Vec<usize>,
    script: VecDeque<(usize, Option<i32>, u64)>,
}

impl BatchSink {
    fn new(limit: usize) -> Self {
        BatchSink {
            limit,
            frames: vec![],
            calls: vec![],
            script: VecDeque::new(),
        }
    }
}

impl FrameSink for BatchSink {
    fn send(&mut self, _: &[u8]) -> io::Result<()> {
        unreachable!("the transmitter sends in batches")
    }
    fn send_batch(&mut self, frames: &[&[u8]]) -> BatchOutcome {
        self.calls.push(frames.len());
        let (n, err, short) =
            self.script
                .pop_front()
                .unwrap_or((frames.len().min(self.limit), None, 0));
        let n = n.min(frames.len());
        self.frames.extend(frames[..n].iter().map(|f| f.to_vec()));
        let mut out = BatchOutcome::new(n, err.map(io::Error::from_raw_os_error));
        out.short = short;
        out
    }
}

/// `n` UDP frames, each carrying its index, at the given times.
fn numbered(times: &[f64]) -> Vec<u8> {
    let frames: Vec<(f64, Vec<u8>)> = times
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, udp(A, 1, B, 2, &(i as u32).to_be_bytes())))
        .collect();
    pcap(LinkType::ETHERNET, &frames)
}

fn index_of(frame: &[u8]) -> u32 {
    // Ethernet 14 + IPv4 20 + UDP 8 bytes of headers.
    u32::from_be_bytes(frame[42..46].try_into().unwrap())
}

fn batch_tx(sink: BatchSink, pacing: Pacing) -> Transmitter<BatchSink, ManualClock> {
    Transmitter::new(sink, ManualClock::new(), TxOptions::new(pacing))
}

fn pass_b(t: &mut Transmitter<BatchSink, ManualClock>, bytes: &[u8]) {
    let mut r = CaptureReader::new(bytes).unwrap();
    assert!(t.run_pass(&mut r).unwrap().is_none());
}

#[test]
fn max_speed_sends_full_batches_in_order() {
    // 200 frames all due at once: ⌈200 / 64⌉ = 4 calls of 64, 64, 64, 8.
    let mut t = batch_tx(BatchSink::new(BATCH), Pacing::Timestamps(Speed::Max));
    pass_b(&mut t, &numbered(&[0.0; 200]));
    assert_eq!(t.sink().calls, vec![64, 64, 64, 8]);
    let got: Vec<u32> = t.sink().frames.iter().map(|f| index_of(f)).collect();
    assert_eq!(got, (0..200).collect::<Vec<u32>>());
    let r = t.report();
    assert_eq!((r.packets_sent, r.batches, r.failed()), (200, 4, 0));
    assert!(t.clock().sleeps().is_empty());
}

#[test]
fn only_due_frames_are_batched() {
    // Three frames at 0 s, two at 1 s, one at 1.5 s (speed 1): the batch
    // goes out before each wait, so the calls are 3, 2, 1 and the waits
    // are the capture's gaps.
    let mut t = batch_tx(
        BatchSink::new(BATCH),
        Pacing::Timestamps(Speed::Factor(1.0)),
    );
    pass_b(&mut t, &numbered(&[0.0, 0.0, 0.0, 1.0, 1.0, 1.5]));
    assert_eq!(t.sink().calls, vec![3, 2, 1]);
    let ms = Duration::from_millis;
    assert_eq!(t.clock().sleeps(), &[ms(1000), ms(500)]);
    // At a fixed rate every frame waits for its slot: no batching.
    let mut t = batch_tx(BatchSink::new(BATCH), Pacing::Rate(Rate::Pps(1000.0)));
    pass_b(&mut t, &numbered(&[0.0; 5]));
    assert_eq!(t.sink().calls, vec![1; 5]);
    assert_eq!(t.clock().sleeps(), &[ms(1); 4]);
}

#[test]
fn partial_batches_send_the_rest() {
    // The sink takes 3 frames a call and says nothing of the rest: the
    // transmitter offers the remainder again until all 10 are out.
    let mut t = batch_tx(BatchSink::new(3), Pacing::Timestamps(Speed::Max));
    pass_b(&mut t, &numbered(&[0.0; 10]));
    assert_eq!(t.sink().calls, vec![10, 7, 4, 1]);
    let got: Vec<u32> = t.sink().frames.iter().map(|f| index_of(f)).collect();
    assert_eq!(got, (0..10).collect::<Vec<u32>>());
    assert_eq!((t.report().packets_sent, t.report().batches), (10, 4));
}

#[test]
fn lost_error_is_learnt_on_retry_and_counted_once() {
    // Call 1: 2 frames out, then a silent stop (sendmmsg loses the error).
    // Call 2: frame 2 fails with ENOBUFS (retried after a backoff).
    // Call 3: frame 2 fails with EAGAIN (retried too).
    // Call 4: frame 2 fails with EMSGSIZE: counted, skipped.
    // Then frames 3 and 4 go out.
    let mut sink = BatchSink::new(BATCH);
    sink.script.extend([
        (2, None, 0),
        (0, Some(libc::ENOBUFS), 0),
        (0, Some(libc::EAGAIN), 0),
        (0, Some(libc::EMSGSIZE), 0),
    ]);
    let mut t = batch_tx(sink, Pacing::Timestamps(Speed::Max));
    pass_b(&mut t, &numbered(&[0.0; 5]));
    assert_eq!(t.sink().calls, vec![5, 3, 3, 3, 2]);
    let got: Vec<u32> = t.sink().frames.iter().map(|f| index_of(f)).collect();
    assert_eq!(got, vec![0, 1, 3, 4]);
    let r = t.report();
    assert_eq!((r.packets_sent, r.enobufs_retries, r.failed()), (4, 2, 1));
    assert_eq!(r.failed_by_errno.get(&libc::EMSGSIZE), Some(&1));
    assert_eq!(t.clock().sleeps(), &[Duration::from_micros(200); 2]);
}

#[test]
fn short_frames_in_a_batch_count_as_failed() {
    // Frames 1 and 3 of 4 accepted only in part (bits 1 and 3).
    let mut sink = BatchSink::new(BATCH);
    sink.script.push_back((4, None, 0b1010));
    let mut t = batch_tx(sink, Pacing::Timestamps(Speed::Max));
    let bytes = numbered(&[0.0; 4]);
    pass_b(&mut t, &bytes);
    let r = t.report();
    assert_eq!((r.packets_sent, r.failed()), (2, 2));
    assert_eq!(r.failed_by_errno.get(&0), Some(&2));
    // Two whole frames of 46 bytes (14 + 20 + 8 + 4).
    assert_eq!(r.bytes_sent, 2 * 46);
}

#[test]
fn interface_gone_mid_batch_stops() {
    let mut sink = BatchSink::new(BATCH);
    sink.script.push_back((1, Some(libc::ENODEV), 0));
    let mut t = batch_tx(sink, Pacing::Timestamps(Speed::Max));
    let bytes = numbered(&[0.0; 4]);
    let mut r = CaptureReader::new(&bytes[..]).unwrap();
    assert!(matches!(t.run_pass(&mut r), Err(TxError::Interface(_))));
    assert_eq!(t.report().packets_sent, 1);
    assert_eq!(t.report().failed_by_errno.get(&libc::ENODEV), Some(&1));
    assert_eq!(
        t.sink().calls,
        vec![4],
        "nothing sent after the interface went"
    );
}

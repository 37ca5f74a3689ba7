//! A classic pcap writer (nanosecond timestamps), for `--write` and for
//! building test captures.

use std::io::{self, Write};

use flowscope_core::{LinkType, Timestamp};

/// Writes frames of one link type as a little-endian, nanosecond pcap.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    link_type: LinkType,
}

/// The snapshot length written in the file header.
pub const SNAPLEN: u32 = 262_144;

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut w: W, link_type: LinkType) -> io::Result<Self> {
        let mut h = [0u8; 24];
        // Nanosecond-resolution magic, written little-endian.
        h[..4].copy_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&u32::from(link_type.0).to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w, link_type })
    }

    /// The link type every frame must have.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// Writes one record: `data` as captured, `wire_len` as on the wire.
    pub fn write(&mut self, ts: Timestamp, data: &[u8], wire_len: u32) -> io::Result<()> {
        let caplen = u32::try_from(data.len())
            .ok()
            .filter(|l| *l <= SNAPLEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame above snaplen"))?;
        let secs = u32::try_from(ts.secs())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "timestamp past 2106"))?;
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&ts.subsec_nanos().to_le_bytes());
        h[8..12].copy_from_slice(&caplen.to_le_bytes());
        h[12..16].copy_from_slice(&wire_len.max(caplen).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowscope::capture::CaptureReader;

    #[test]
    fn reads_back() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::RAW).unwrap();
        let t = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        w.write(t, &[0x45, 1, 2], 60).unwrap();
        w.write(
            t.saturating_add(std::time::Duration::from_secs(1)),
            &[0x60],
            1,
        )
        .unwrap();
        let bytes = w.finish().unwrap();
        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(
            (p.ts, p.data, p.wire_len, p.link_type),
            (t, &[0x45, 1, 2][..], 60, LinkType::RAW)
        );
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.ts.secs(), 1_700_000_001);
        assert!(r.next_packet().unwrap().is_none());
    }
}

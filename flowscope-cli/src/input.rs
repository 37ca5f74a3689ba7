//! Opening a capture for the CLIs.
//!
//! By default a capture is read as a stream (`read(2)` into the reader's
//! buffer): standard input works, and the process's resident memory does
//! not grow with the file. With `--mmap`, a regular file is mapped and its
//! records are lent in place ([`CaptureReader::from_bytes`]): no copy per
//! record, the fastest way through a capture in the page cache, but the
//! pages read count in the process's resident set (file-backed, reclaimable)
//! until the end.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use flowscope::capture::{Bytes, CaptureError, CaptureReader};
use memmap2::{Advice, Mmap};

/// The reader every CLI path uses, whatever the input.
pub type Reader = CaptureReader<Box<dyn Read + Send>>;

/// Opens `path` (`-` for standard input); `map` maps a regular file and
/// reads it in place. Anything that cannot be mapped (stdin, a pipe, an
/// empty file, a failed `mmap`) is read as a stream, so errors name the
/// file as [`CaptureReader::open`] does.
pub fn open_capture(path: &Path, map: bool) -> Result<Reader, CaptureError> {
    if map && path.as_os_str() != "-" {
        if let Some(mapped) = map_file(path) {
            return CaptureReader::from_bytes(Bytes::from_owner(mapped)).map(CaptureReader::boxed);
        }
    }
    CaptureReader::open(path)
}

fn map_file(path: &Path) -> Option<Mmap> {
    // Look before opening: opening a FIFO would block for a writer.
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    let file = File::open(path).ok()?;
    // SAFETY: the map is read-only and lives as long as the `Bytes` that owns
    // it. Rust's aliasing rules would be broken only if another process
    // changed or truncated the file while it is mapped (truncation raises
    // SIGBUS); `--mmap` is documented as not for captures still being
    // rewritten, and appends past the mapped length are simply not seen.
    let mapped = unsafe { Mmap::map(&file) }.ok()?;
    // Read once front to back: ask for aggressive read-ahead.
    let _ = mapped.advise(Advice::Sequential);
    Some(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap of `n` 60-byte Ethernet frames.
    fn pcap(n: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [0xa1b2_c3d4u32, 0x0002_0004, 0, 0, 65_535, 1] {
            if w == 0x0002_0004 {
                v.extend_from_slice(&2u16.to_le_bytes());
                v.extend_from_slice(&4u16.to_le_bytes());
            } else {
                v.extend_from_slice(&w.to_le_bytes());
            }
        }
        for i in 0..n {
            for w in [i, 0, 60, 60] {
                v.extend_from_slice(&w.to_le_bytes());
            }
            v.extend(std::iter::repeat_n(i as u8, 60));
        }
        v
    }

    fn read(path: &Path, map: bool) -> (u64, Vec<u8>, Option<String>) {
        let mut r = open_capture(path, map).expect("open");
        let mut last = Vec::new();
        let mut n = 0;
        loop {
            match r.next_packet() {
                Ok(Some(p)) => {
                    n += 1;
                    last = p.data.to_vec();
                }
                Ok(None) => return (n, last, None),
                Err(e) => return (n, last, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn mapped_and_streamed_files_read_alike() {
        let dir = std::env::temp_dir().join(format!("flowscope-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let whole = dir.join("whole.pcap");
        let cut = dir.join("cut.pcap");
        let data = pcap(1000);
        std::fs::write(&whole, &data).expect("write");
        std::fs::write(&cut, &data[..data.len() - 30]).expect("write");
        let w = read(&whole, true);
        assert_eq!(w.0, 1000);
        assert_eq!(w.1, vec![(999 % 256) as u8; 60]);
        assert_eq!(w, read(&whole, false));
        let c = read(&cut, true);
        assert_eq!(c.0, 999);
        assert!(c.2.is_some(), "a cut record is an error");
        assert_eq!(c, read(&cut, false));
        // Unmappable inputs fall back to the stream reader and its errors:
        // a missing file, an empty one, a directory.
        let missing = dir.join("missing.pcap");
        let e = open_capture(&missing, true).expect_err("missing");
        assert!(e.to_string().contains("missing.pcap"), "{e}");
        let empty = dir.join("empty.pcap");
        std::fs::write(&empty, b"").expect("write");
        let (mapped, streamed) = (
            open_capture(&empty, true).expect_err("empty").to_string(),
            open_capture(&empty, false).expect_err("empty").to_string(),
        );
        assert_eq!(mapped, streamed);
        assert!(mapped.contains("empty input"), "{mapped}");
        assert!(open_capture(&dir, true).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

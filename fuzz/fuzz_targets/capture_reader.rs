//! CaptureReader over arbitrary bytes, read to the end: never panics, stops
//! after the first error, never returns a packet longer than MAX_PACKET_LEN,
//! and counts every packet it hands out.
#![no_main]

use flowscope::capture::{CaptureReader, MAX_PACKET_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small buffer so that refills and buffer growth are exercised too.
    let Ok(mut reader) = CaptureReader::with_buffer_len(data, 64) else {
        return;
    };
    let mut packets = 0u64;
    loop {
        match reader.next_packet() {
            Ok(Some(pkt)) => {
                packets += 1;
                assert!(pkt.data.len() <= MAX_PACKET_LEN);
            }
            Ok(None) => break,
            Err(_) => {
                // After any error the reader is done.
                assert!(matches!(reader.next_packet(), Ok(None)));
                break;
            }
        }
    }
    assert_eq!(reader.packets_read(), packets);
    assert!(reader.bytes_consumed() <= data.len() as u64);
});

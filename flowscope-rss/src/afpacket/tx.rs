//! Raw transmit of whole frames onto an interface (for `flow-replay --iface`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::sys;

/// Most frames handed to one `sendmmsg(2)` call: large enough that the
/// syscall cost is spread thin (64 frames per entry into the kernel), small
/// enough that the message headers live on the stack (no allocation per
/// batch) and a paced replay is never held back by a long batch.
pub const MAX_BATCH: usize = 64;

// `BatchSent::short` has one bit per frame of a batch.
const _: () = assert!(MAX_BATCH <= u64::BITS as usize);

/// An AF_PACKET socket bound to one interface that sends frames as they are
/// (link-layer header included, no checksum or address fix-up).
#[derive(Debug)]
pub struct TxSocket {
    fd: OwnedFd,
    ifname: String,
}

/// What one [`TxSocket::send_batch`] call did.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchSent {
    /// Frames from the front of the batch the kernel accepted.
    pub sent: usize,
    /// Bit `i` is set when accepted frame `i` went out only in part (the
    /// kernel's `msg_len` is short of the frame; AF_PACKET sends whole
    /// frames or fails, so this is a should-not-happen, counted not hidden).
    pub short: u64,
    /// Why frame `sent` was not accepted, when the kernel said so. `None`
    /// with `sent` short of the batch means the kernel stopped early without
    /// naming the error (`sendmmsg(2)` drops it after a partial send): send
    /// the rest again to learn it.
    pub error: Option<io::Error>,
}

impl TxSocket {
    /// Opens a transmit socket on `iface` (needs `CAP_NET_RAW`).
    ///
    /// The socket is bound with protocol 0, so it receives nothing: the
    /// kernel does not queue every frame on the interface for it.
    pub fn open(iface: &str) -> io::Result<Self> {
        let fd = sys::packet_socket(0)?;
        let ifindex = sys::if_index(iface)?;
        sys::bind_to(&fd, ifindex, 0)?;
        Ok(TxSocket {
            fd,
            ifname: iface.to_owned(),
        })
    }

    /// The interface this socket sends on.
    pub fn iface(&self) -> &str {
        &self.ifname
    }

    /// Sends frames straight to the device driver, skipping the interface's
    /// queueing discipline (`PACKET_QDISC_BYPASS`): faster, but the qdisc's
    /// shaping and back-pressure are gone, so a full device queue drops the
    /// frame (`ENOBUFS`) instead of queueing it.
    pub fn bypass_qdisc(&mut self) -> io::Result<()> {
        let on: libc::c_int = 1;
        sys::set_opt(&self.fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &on)
    }

    /// Sends one frame (starting at its Ethernet header). Fails with the
    /// kernel's error, e.g. `EMSGSIZE` for a frame above the interface MTU or
    /// `ENOBUFS` when the queue is full (the caller may retry).
    pub fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is a live slice; send(2) reads exactly `frame.len()` bytes from it.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short send: {n} of {} bytes", frame.len()),
            ));
        }
        Ok(())
    }

    /// Sends up to [`MAX_BATCH`] frames (the first ones of `frames`) with one
    /// `sendmmsg(2)`, in order. The kernel stops at the first frame it
    /// refuses: the frames before it went out, the ones from it on did not.
    /// A frame the kernel took only in part is counted in `sent` and flagged
    /// in [`BatchSent::short`].
    pub fn send_batch(&mut self, frames: &[&[u8]]) -> BatchSent {
        let n = frames.len().min(MAX_BATCH);
        // SAFETY: iovec and mmsghdr are plain old data; all-zero is a valid
        // value of each (null pointers with zero lengths).
        let mut iov: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for ((f, v), m) in frames.iter().zip(iov.iter_mut()).zip(msgs.iter_mut()) {
            v.iov_base = f.as_ptr().cast_mut().cast();
            v.iov_len = f.len();
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        // The socket is bound, so no destination address: msg_name stays null.
        // SAFETY: the first `n` entries of `msgs` each point at one live
        // iovec in `iov`, which points at a live frame slice of that length;
        // all of them outlive the call. The kernel reads the frames and
        // writes only `msg_len` of those `n` entries.
        let rc = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
        if rc < 0 {
            return BatchSent {
                sent: 0,
                short: 0,
                error: Some(io::Error::last_os_error()),
            };
        }
        let sent = usize::try_from(rc).unwrap_or(0).min(n);
        let mut short = 0u64;
        for (i, (m, f)) in msgs.iter().zip(frames).take(sent).enumerate() {
            if m.msg_len as usize != f.len() {
                short |= 1 << i;
            }
        }
        BatchSent {
            sent,
            short,
            error: None,
        }
    }
}

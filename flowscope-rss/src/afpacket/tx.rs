//! Raw transmit of whole frames onto an interface (for `flow-replay --iface`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::sys;

/// An AF_PACKET socket bound to one interface that sends frames as they are
/// (link-layer header included, no checksum or address fix-up).
#[derive(Debug)]
pub struct TxSocket {
    fd: OwnedFd,
    ifname: String,
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
}

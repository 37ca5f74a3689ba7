//! Small safe wrappers over the libc calls AF_PACKET needs.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::bpf::BpfInstruction;

/// `ETH_P_ALL` in network byte order, as `socket(2)` and `bind(2)` want it.
pub(crate) fn eth_p_all_be() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

/// A new `AF_PACKET`/`SOCK_RAW` socket for every protocol.
pub(crate) fn packet_socket(protocol_be: u16) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers and returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(protocol_be),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is valid and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The index of interface `name`.
pub(crate) fn if_index(name: &str) -> io::Result<i32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name contains NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name:?}"),
        ));
    }
    i32::try_from(idx).map_err(|_| io::Error::other("interface index out of range"))
}

/// Binds `fd` to interface `ifindex` for `protocol_be`.
pub(crate) fn bind_to(fd: &OwnedFd, ifindex: i32, protocol_be: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol_be;
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a properly initialised sockaddr_ll and the length passed is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setsockopt(fd, level, name, &value)` for any plain-data `value`.
pub(crate) fn set_opt<T: Copy>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size passed; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The system page size (the ring's block size must be a multiple of it).
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf(3) takes an integer and returns a long; no memory involved.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// `getsockopt(PACKET_STATISTICS)` for a TPACKET_V3 socket. The kernel
/// clears its counters on every read.
pub(crate) fn packet_stats_v3(fd: &OwnedFd) -> io::Result<libc::tpacket_stats_v3> {
    let mut st = libc::tpacket_stats_v3 {
        tp_packets: 0,
        tp_drops: 0,
        tp_freeze_q_cnt: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: `st` is a live tpacket_stats_v3 and `len` its size; the kernel
    // writes at most `len` bytes into it and stores the length it wrote.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats_v3).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The pending socket error (`SO_ERROR`, which reading clears), if any.
pub(crate) fn take_socket_error(fd: &OwnedFd) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` is a live c_int and `len` its size; the kernel writes at most that.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}

/// The `ARPHRD_*` hardware type of the interface a bound packet socket is on.
pub(crate) fn bound_hardware_type(fd: &OwnedFd) -> io::Result<u16> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `sll` is a live sockaddr_ll and `len` its size; the kernel writes at most that.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut sll as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sll.sll_hatype)
}

/// Attaches a classic BPF program (`SO_ATTACH_FILTER`).
pub(crate) fn attach_filter(fd: &OwnedFd, insns: &[BpfInstruction]) -> io::Result<()> {
    let mut prog: Vec<libc::sock_filter> = insns
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?,
        filter: prog.as_mut_ptr(),
    };
    // The kernel copies the program during the call; `prog` outlives it.
    set_opt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// What `poll(2)` said about a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Something to read.
    Readable,
    /// The socket has an error pending (`POLLERR`).
    Error,
    /// The timeout passed, or a signal interrupted the wait.
    TimedOut,
}

/// Waits up to `timeout_ms` for `fd` to become readable.
pub(crate) fn poll_readable(fd: &OwnedFd, timeout_ms: i32) -> io::Result<Readiness> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLERR,
        revents: 0,
    };
    // SAFETY: `pfd` is one live pollfd and we pass a count of 1.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        // A signal (e.g. the SIGINT that asks workers to stop) is not an
        // error: report it as an idle tick so the caller can look around.
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(Readiness::TimedOut)
        } else {
            Err(e)
        };
    }
    if rc == 0 {
        return Ok(Readiness::TimedOut);
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return Ok(Readiness::Error);
    }
    Ok(Readiness::Readable)
}

/// Moves the calling thread into the network namespace `ns` (an open
/// `/run/netns/NAME` or `/proc/PID/ns/net`). Needs `CAP_SYS_ADMIN`.
pub(crate) fn setns_net(ns: &File) -> io::Result<()> {
    // SAFETY: setns(2) takes a descriptor we own for the duration of the call
    // and a flag; it changes only the calling thread's namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

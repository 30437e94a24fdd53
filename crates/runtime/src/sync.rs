//! The messages `create` and the container's init exchange over a `SOCK_SEQPACKET` socket pair.
//!
//! ```text
//!  berth-runtime create (parent)                        container init (child, in the new namespaces)
//!  ───────────────────────────                          ─────────────────────────────────────────────
//!  clone3(namespace flags, CLONE_INTO_CGROUP) ───────▶  blocks reading the socket
//!  writes /proc/PID/{uid_map,gid_map}
//!  ── Go ────────────────────────────────────────────▶  builds the rootfs (mounts, devices, /dev links)
//!  adds PID to the cgroup (v1, or v2 without            meanwhile: a v1 cgroup migration waits for
//!  clone3), in parallel with the rootfs work            an RCU grace period, milliseconds
//!  ── CgroupJoined ──────────────────────────────────▶  (awaited before the cgroup namespace is
//!                                                        unshared, the hooks, and the exec)
//!                                        ◀──────────── Hooks
//!  runs prestart + createRuntime hooks (host side)
//!  ── HooksDone ─────────────────────────────────────▶  runs createContainer hooks, pivot_root, masked
//!                                                        and read-only paths, hostname, sysctls, process
//!                                                        attributes, resolves the executable
//!                                        ◀──────────── Ready
//!  writes state.json and --pid-file, exits 0            blocks opening exec.fifo for writing until
//!                                                        `start` opens it for reading, then execs
//!  Any failure in the child: ◀── Error(message), the child exits; the parent removes everything.
//! ```
//! When namespaces are joined by path, an intermediate process joins them first and forks the init;
//! it asks for the id maps with `MapIds` (carrying its pid) and reports the init's pid with `Pid`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Go,
    CgroupJoined,
    Hooks,
    HooksDone,
    Ready,
    MapIds(i32),
    MapsDone,
    Pid(i32),
    /// Carries the seccomp notification descriptor (SCM_RIGHTS) for the listener.
    SeccompFd,
    Error(String),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, String) = match self {
            Msg::Go => (b'G', String::new()),
            Msg::CgroupJoined => (b'C', String::new()),
            Msg::Hooks => (b'H', String::new()),
            Msg::HooksDone => (b'h', String::new()),
            Msg::Ready => (b'R', String::new()),
            Msg::MapIds(pid) => (b'M', pid.to_string()),
            Msg::MapsDone => (b'm', String::new()),
            Msg::Pid(pid) => (b'P', pid.to_string()),
            Msg::SeccompFd => (b'S', String::new()),
            Msg::Error(e) => (b'E', e.clone()),
        };
        let mut v = vec![tag];
        v.extend_from_slice(body.as_bytes());
        v
    }

    fn decode(buf: &[u8]) -> io::Result<Msg> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sync message");
        let (&tag, rest) = buf.split_first().ok_or_else(bad)?;
        let text = String::from_utf8_lossy(rest).into_owned();
        let pid = || text.parse::<i32>().map_err(|_| bad());
        Ok(match tag {
            b'G' => Msg::Go,
            b'C' => Msg::CgroupJoined,
            b'H' => Msg::Hooks,
            b'h' => Msg::HooksDone,
            b'R' => Msg::Ready,
            b'M' => Msg::MapIds(pid()?),
            b'm' => Msg::MapsDone,
            b'P' => Msg::Pid(pid()?),
            b'S' => Msg::SeccompFd,
            b'E' => Msg::Error(text),
            _ => return Err(bad()),
        })
    }
}

/// One end of the socket pair.
#[derive(Debug)]
pub struct SyncSocket(OwnedFd);

impl SyncSocket {
    /// A connected pair (close-on-exec, so the container's program never sees it).
    pub fn pair() -> io::Result<(SyncSocket, SyncSocket)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((SyncSocket(a), SyncSocket(b)))
    }

    pub fn send(&self, msg: &Msg) -> io::Result<()> {
        send(self.0.as_raw_fd(), &msg.encode(), MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// The next message; `None` when the other end closed without one.
    pub fn recv(&self) -> io::Result<Option<Msg>> {
        let mut buf = vec![0u8; 8192];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => return Msg::decode(&buf[..n]).map(Some),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends `msg` with a descriptor attached.
    pub fn send_with_fd(&self, msg: &Msg, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
        berth_sys::send_fd(self.0.as_fd(), &msg.encode(), fd)
    }

    /// The next message and the descriptor that came with it, if any.
    pub fn recv_with_fd(&self) -> io::Result<(Option<Msg>, Option<OwnedFd>)> {
        let mut buf = vec![0u8; 8192];
        loop {
            match berth_sys::recv_fd(self.0.as_fd(), &mut buf) {
                Ok((0, _)) => return Ok((None, None)),
                Ok((n, fd)) => return Msg::decode(&buf[..n]).map(|m| (Some(m), fd)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (a, b) = SyncSocket::pair().unwrap();
        for m in [
            Msg::Go,
            Msg::Hooks,
            Msg::HooksDone,
            Msg::Ready,
            Msg::MapIds(42),
            Msg::MapsDone,
            Msg::Pid(7),
            Msg::Error("mount proc: EPERM".into()),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        let file = std::fs::File::open("/dev/null").unwrap();
        a.send_with_fd(&Msg::SeccompFd, file.as_fd()).unwrap();
        let (m, fd) = b.recv_with_fd().unwrap();
        assert_eq!(m, Some(Msg::SeccompFd));
        assert!(fd.is_some());
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}

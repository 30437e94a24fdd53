//! Unix sockets: the shim's own listening socket, and the console socket on which the runtime sends
//! the pty master.
//!
//! A socket path may be longer than `sun_path` (108 bytes: a state directory named by a 64-digit id
//! with `exec-<64 digits>.sock` in it is): the shim then binds through `/proc/self/fd/N/NAME` of the
//! opened directory, and a client connects the same way.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::stat::{umask, Mode};

/// The most bytes of a path `sockaddr_un` takes (with its terminating NUL).
const SUN_PATH: usize = 108;

#[derive(Debug, thiserror::Error)]
pub enum SockError {
    #[error("listen on {0}")]
    Listen(PathBuf, #[source] io::Error),
    #[error("listen on {0}: another shim answers there")]
    InUse(PathBuf),
    #[error("console socket {0}")]
    Console(PathBuf, #[source] io::Error),
    #[error("console socket {0}: the runtime sent no terminal")]
    NoTerminal(PathBuf),
}

/// A path to use for `path` in `bind`/`connect`: itself when short enough, else through the
/// descriptor of its directory (kept open in the returned `File`).
fn reachable(path: &Path) -> io::Result<(PathBuf, Option<File>)> {
    if path.as_os_str().len() < SUN_PATH {
        return Ok((path.to_path_buf(), None));
    }
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => (d, n),
        _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    let d = File::open(dir)?;
    let short = Path::new(&format!("/proc/self/fd/{}", d.as_raw_fd())).join(name);
    Ok((short, Some(d)))
}

/// Connects to a unix socket, also at a path longer than `sun_path` (what a client does).
#[cfg(test)]
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    let (p, _dir) = reachable(path)?;
    UnixStream::connect(p)
}

/// Listens at `path` with mode 0600. A stale socket left by a shim that was killed is replaced; one
/// where a shim still answers is an error.
pub fn listen(path: &Path) -> Result<UnixListener, SockError> {
    let err = |e| SockError::Listen(path.to_path_buf(), e);
    let (p, _dir) = reachable(path).map_err(err)?;
    match UnixStream::connect(&p) {
        Ok(_) => return Err(SockError::InUse(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(err)?;
        }
        Err(_) => {}
    }
    // The umask makes the socket 0600 from the start; it is the only file made meanwhile.
    let old = umask(Mode::from_bits_truncate(0o177));
    let l = UnixListener::bind(&p);
    umask(old);
    let l = l.map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

/// A listening socket that receives the pty master from the runtime.
pub struct Console {
    /// The path given to the runtime.
    pub path: PathBuf,
    listener: UnixListener,
    /// A private directory made for it (when the preferred path was too long), removed on drop.
    tmpdir: Option<PathBuf>,
}

impl Console {
    /// Listens at `preferred`, or in a private directory under /tmp when that path is too long for
    /// the runtime to connect to.
    pub fn new(preferred: &Path) -> Result<Console, SockError> {
        let err = |p: &Path, e| SockError::Console(p.to_path_buf(), e);
        let (path, tmpdir) = if preferred.as_os_str().len() < SUN_PATH {
            (preferred.to_path_buf(), None)
        } else {
            let d = nix::unistd::mkdtemp("/tmp/berth-shim-XXXXXX").map_err(|e| err(preferred, e.into()))?;
            (d.join("console.sock"), Some(d))
        };
        let _ = std::fs::remove_file(&path);
        let listener = listen(&path).map_err(|e| match e {
            SockError::Listen(p, e) => err(&p, e),
            other => other,
        })?;
        Ok(Console {
            path,
            listener,
            tmpdir,
        })
    }

    /// The master the runtime sent (its connection is queued by the time the runtime has exited).
    pub fn receive(&self) -> Result<OwnedFd, SockError> {
        let err = |e| SockError::Console(self.path.clone(), e);
        let conn = match self.listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(SockError::NoTerminal(self.path.clone()))
            }
            Err(e) => return Err(err(e)),
        };
        conn.set_nonblocking(false).map_err(err)?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).map_err(err)?;
        let mut buf = [0u8; 64];
        let (_, fd) = berth_sys::recv_fd(conn.as_fd(), &mut buf).map_err(err)?;
        fd.ok_or_else(|| SockError::NoTerminal(self.path.clone()))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(d) = &self.tmpdir {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_at_long_paths_and_replaces_stale_sockets() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("x".repeat(60)).join("y".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("exec-0123456789.sock");
        assert!(path.as_os_str().len() > SUN_PATH);
        let l = listen(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _c = connect(&path).unwrap();
        assert!(l.accept().is_ok());
        assert!(matches!(listen(&path), Err(SockError::InUse(_))));
        drop(l);
        // The file stays behind, as after a SIGKILL; nothing answers, so it is replaced.
        assert!(path.exists());
        let _l = listen(&path).unwrap();
        assert!(connect(&path).is_ok());
    }

    #[test]
    fn console_socket_in_a_private_directory_when_the_path_is_long() {
        let d = tempfile::tempdir().unwrap();
        let c = Console::new(&d.path().join("c".repeat(120))).unwrap();
        assert!(
            c.path.to_string_lossy().starts_with("/tmp/berth-shim-"),
            "{}",
            c.path.display()
        );
        assert!(matches!(c.receive(), Err(SockError::NoTerminal(_))));
        let dir = c.tmpdir.clone().unwrap();
        drop(c);
        assert!(!dir.exists());
    }
}

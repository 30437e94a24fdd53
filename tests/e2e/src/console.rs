//! A console socket as containerd provides one: a listening unix socket that receives the pty master
//! of a container with a terminal (SCM_RIGHTS), then lets the test read the container's output.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

pub struct ConsoleSocket {
    pub path: PathBuf,
    rx: mpsc::Receiver<Option<OwnedFd>>,
}

impl ConsoleSocket {
    /// Listens at `dir/console.sock`; a thread accepts one connection and receives the master.
    pub fn new(dir: &Path) -> ConsoleSocket {
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind console socket");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let fd = listener.accept().ok().and_then(|(conn, _)| {
                let mut buf = [0u8; 256];
                berth_sys::recv_fd(conn.as_fd(), &mut buf)
                    .ok()
                    .and_then(|(_, fd)| fd)
            });
            let _ = tx.send(fd);
        });
        ConsoleSocket { path, rx }
    }

    /// The pty master, once the runtime sent it.
    pub fn master(&self, timeout: Duration) -> Option<OwnedFd> {
        self.rx.recv_timeout(timeout).ok().flatten()
    }
}

/// Reads what the master gives until `needle` shows up or the time is up.
pub fn read_until(master: OwnedFd, needle: &str, timeout: Duration) -> String {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut buf = [0u8; 4096];
        let mut acc = String::new();
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            acc.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(acc.clone());
        }
    });
    let mut last = String::new();
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Ok(s) = rx.recv_timeout(Duration::from_millis(50)) {
            last = s;
            if last.contains(needle) {
                break;
            }
        }
    }
    last
}

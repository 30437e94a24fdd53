//! Foreground `run` and `exec`: signals are forwarded to the container's process and, when it has a
//! terminal and the caller gave no console socket, berth-runtime holds the pty master itself and
//! copies between it and its own stdio (with its terminal in raw mode), as runc does.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// A listening socket in a private directory that receives the pty master from the init.
pub struct ConsoleListener {
    dir: PathBuf,
    listener: UnixListener,
}

impl ConsoleListener {
    pub fn new(root: &std::path::Path, id: &str) -> std::io::Result<ConsoleListener> {
        let dir = root.join(format!(".console-{id}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let listener = UnixListener::bind(dir.join("sock"))?;
        Ok(ConsoleListener { dir, listener })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// The master the init sent (it is already queued: the init connected during create).
    pub fn receive(&self) -> std::io::Result<OwnedFd> {
        let (conn, _) = self.listener.accept()?;
        let mut buf = [0u8; 256];
        let (_, fd) = berth_sys::recv_fd(conn.as_fd(), &mut buf)?;
        fd.ok_or_else(|| std::io::Error::other("the console socket received no descriptor"))
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Blocks every signal (they are read from a signalfd instead); the init unblocks them before exec.
pub fn block_signals() -> nix::Result<SigSet> {
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)?;
    Ok(all)
}

struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn copy_size(master: BorrowedFd<'_>) {
    if let Some((rows, cols)) = terminal_size() {
        let _ = berth_sys::term::set_window_size(master, rows, cols);
    }
}

fn terminal_size() -> Option<(u16, u16)> {
    let out = std::io::stdout();
    if !out.is_terminal() {
        return None;
    }
    let ws = berth_sys::term::window_size(out.as_fd()).ok()?;
    Some(ws)
}

/// Waits for `pid` to exit, forwarding signals to it and proxying the terminal if `master` is given;
/// returns the exit status the shell's way (128 + N for a signal).
pub fn wait_foreground(pid: i32, signals: &SigSet, master: Option<OwnedFd>) -> std::io::Result<i32> {
    let mut sfd = SignalFd::new(signals)?;
    let _raw = master.as_ref().map(|_| RawMode::enter());
    if let Some(m) = &master {
        copy_size(m.as_fd());
    }
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let stdin = std::io::stdin();
        if let Some(m) = &master {
            if master_open {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            if let Some(info) = sfd.read_signal()? {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    if let Some(code) = reap(pid) {
                        if let Some(m) = &master {
                            drain(m.as_fd());
                        }
                        return Ok(code);
                    }
                } else if sig == libc::SIGWINCH {
                    if let Some(m) = &master {
                        copy_size(m.as_fd());
                    }
                } else if let Ok(s) = Signal::try_from(sig) {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), s);
                } else {
                    // Real-time signals have no nix Signal: forward them by number.
                    let _ = berth_sys::pidfd_open(pid)
                        .and_then(|fd| berth_sys::pidfd_send_signal(fd.as_fd(), sig));
                }
            }
        }
        let mut idx = 1;
        if let Some(m) = &master {
            if master_open {
                if ready[idx] && !pump(m.as_fd(), &mut std::io::stdout()) {
                    master_open = false;
                }
                idx += 1;
            }
            if stdin_open && ready.get(idx).copied().unwrap_or(false) {
                let mut buf = [0u8; 4096];
                match std::io::stdin().read(&mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => {
                        let _ = nix::unistd::write(m.as_fd(), &buf[..n]);
                    }
                }
            }
        }
        let _ = &mut sfd;
    }
}

/// Copies what the master has to `out`; false at end of file (the slave side is gone).
fn pump(master: BorrowedFd<'_>, out: &mut impl Write) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(master.as_raw_fd(), &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
            true
        }
    }
}

/// What is left in the master once the process is gone.
fn drain(master: BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while pump(master, &mut std::io::stdout()) {}
}

/// Reaps every exited child (orphans re-parented to us included); the exit status of `pid` if it
/// was among them.
fn reap(pid: i32) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => result = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => result = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => continue,
        }
    }
}

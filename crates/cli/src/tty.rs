//! The local terminal and signals: raw mode for stdin (restored once, by whichever side
//! finishes first, and on drop), the window size, and signals taken synchronously by a
//! thread (`sigwait`): they are blocked before any other thread starts, so every thread
//! inherits the mask and only the waiting thread receives them. No handler runs
//! asynchronously, so nothing here needs `unsafe`.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::sync::Mutex;

/// stdin in raw mode until `restore` (or drop).
pub struct Raw {
    saved: Mutex<Option<Termios>>,
}

impl Raw {
    /// docker's `SetRawTerminal` on stdin: nothing when stdin is no terminal.
    pub fn stdin() -> std::io::Result<Option<Raw>> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let fd = stdin.as_fd();
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)?;
        Ok(Some(Raw {
            saved: Mutex::new(Some(saved)),
        }))
    }

    /// Puts the terminal back as it was; later calls do nothing.
    pub fn restore(&self) {
        let saved = self.saved.lock().map(|mut s| s.take()).unwrap_or(None);
        if let Some(t) = saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &t);
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.restore();
    }
}

/// The size of the terminal on stdout as (rows, columns); zeros when it is none.
pub fn size() -> (u16, u16) {
    let out = std::io::stdout();
    if !out.is_terminal() {
        return (0, 0);
    }
    berth_sys::term::window_size(out.as_fd()).unwrap_or((0, 0))
}

/// The signals docker's `--sig-proxy` forwards: everything a process can catch except
/// SIGCHLD, SIGPIPE, SIGURG and the synchronous faults, by the names the API takes.
pub const PROXIED: &[(Signal, &str)] = &[
    (Signal::SIGABRT, "ABRT"),
    (Signal::SIGALRM, "ALRM"),
    (Signal::SIGCONT, "CONT"),
    (Signal::SIGHUP, "HUP"),
    (Signal::SIGINT, "INT"),
    (Signal::SIGIO, "IO"),
    (Signal::SIGPROF, "PROF"),
    (Signal::SIGPWR, "PWR"),
    (Signal::SIGQUIT, "QUIT"),
    (Signal::SIGSTKFLT, "STKFLT"),
    (Signal::SIGSYS, "SYS"),
    (Signal::SIGTERM, "TERM"),
    (Signal::SIGTRAP, "TRAP"),
    (Signal::SIGTSTP, "TSTP"),
    (Signal::SIGTTIN, "TTIN"),
    (Signal::SIGTTOU, "TTOU"),
    (Signal::SIGUSR1, "USR1"),
    (Signal::SIGUSR2, "USR2"),
    (Signal::SIGVTALRM, "VTALRM"),
    (Signal::SIGWINCH, "WINCH"),
    (Signal::SIGXCPU, "XCPU"),
    (Signal::SIGXFSZ, "XFSZ"),
];

/// The API name of a proxied signal.
pub fn name(sig: Signal) -> Option<&'static str> {
    PROXIED.iter().find(|(s, _)| *s == sig).map(|(_, n)| *n)
}

/// Blocks `signals` in the calling thread (call it before starting other threads) and
/// hands each one received to `handler` on a thread of its own.
pub fn catch(signals: &[Signal], handler: impl Fn(Signal) + Send + 'static) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    for s in signals {
        set.add(*s);
    }
    set.thread_block()?;
    std::thread::spawn(move || loop {
        match set.wait() {
            Ok(sig) => handler(sig),
            Err(_) => return,
        }
    });
    Ok(())
}

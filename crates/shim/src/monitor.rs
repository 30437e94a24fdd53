//! The monitor: one `poll(2)` loop over the signalfd (SIGCHLD), the listening socket, the clients,
//! the process's outputs and its stdin. Requests are answered in `requests.rs`, the end is in `end.rs`.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;

use crate::args::Args;
use crate::conn::{Conn, Got, Role};
use crate::exit::Exit;
use crate::frame::{self, Input};
use crate::log::{JsonFile, Stream};
use crate::runtime::Runtime;
use crate::stdio::Stdio;
use crate::{diag, time};

/// While a client has more than this unsent, the process's output is not read (backpressure).
pub const CLIENT_LIMIT: usize = 1024 * 1024;
/// Stdin bytes buffered before clients' stdin frames are no longer read.
const STDIN_LIMIT: usize = 64 * 1024;
/// Output is drained at most this long after the process ended.
const DRAIN: Duration = Duration::from_secs(2);
/// Clients get at most this long after the end to take what is queued for them.
pub const LINGER: Duration = Duration::from_secs(5);
/// The most clients at once; more are refused.
const MAX_CONNS: usize = 256;
/// The size of one read of the process's output.
const READ_CHUNK: usize = 8192;

pub struct Shim {
    pub args: Args,
    pub rt: Runtime,
    pub listener: UnixListener,
    pub sigfd: SignalFd,
    pub io: Stdio,
    pub log: Option<JsonFile>,
    pub conns: Vec<Conn>,
    /// The process (0 until an exec has started).
    pub pid: i32,
    pub started: bool,
    /// Why START failed: the EXIT gets it as `error`.
    pub start_error: Option<String>,
    pub exit: Option<Exit>,
    /// When draining stops at the latest.
    pub drain_until: Option<Instant>,
    /// Set once the end is recorded; the loop then only sends what clients still have queued.
    pub linger_until: Option<Instant>,
    /// A RESIZE that came before the terminal (exec mode, before START).
    pub pending_size: Option<(u16, u16)>,
    pub log_failed: bool,
    /// The container's memory cgroup OOM counter (container mode).
    pub oom: Option<crate::oom::OomWatch>,
}

#[derive(Debug, Clone, Copy)]
enum Tag {
    Signal,
    Listener,
    Output(Stream),
    Stdin,
    Conn(usize),
}

impl Shim {
    /// Runs until the end has been recorded and told; then removes the socket and the pid file.
    pub fn run(mut self) {
        loop {
            let now = Instant::now();
            if self.exit.is_some() && self.linger_until.is_none() {
                let drained = self.io.outputs_closed() || self.drain_until.is_some_and(|t| now >= t);
                if drained {
                    self.finish();
                    continue;
                }
            }
            if let Some(t) = self.linger_until {
                // Connections that have not asked anything yet do not hold the end up.
                if self.conns.iter().all(|c| c.unsent() == 0) || now >= t {
                    break;
                }
            }
            self.turn();
        }
        self.cleanup();
    }

    fn timeout(&self) -> PollTimeout {
        let until = self.linger_until.or(if self.exit.is_some() {
            self.drain_until
        } else {
            None
        });
        match until {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t.saturating_duration_since(Instant::now()).as_millis() + 1;
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::NONE)
            }
        }
    }

    /// One poll and the work it found.
    fn turn(&mut self) {
        let mut ready: Vec<(Tag, PollFlags)> = Vec::with_capacity(8);
        {
            let (fds, tags) = self.poll_set();
            let mut fds = fds;
            match poll(&mut fds, self.timeout()) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => return,
                Err(e) => {
                    diag(&format!("poll: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
            }
            for (fd, tag) in fds.iter().zip(tags) {
                if let Some(r) = fd.revents().filter(|r| !r.is_empty()) {
                    ready.push((tag, r));
                }
            }
        }
        for (tag, r) in ready {
            match tag {
                Tag::Signal => self.signals(),
                Tag::Listener => self.accept(),
                Tag::Output(s) => self.read_output(s),
                Tag::Stdin => self.io.write_stdin(),
                Tag::Conn(i) => {
                    if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                        self.read_conn(i);
                    }
                    if r.contains(PollFlags::POLLOUT) {
                        self.conns[i].flush();
                    }
                }
            }
        }
        self.conns
            .retain(|c| !(c.dead || c.role == Role::Closing && c.unsent() == 0));
    }

    fn poll_set<'a>(&'a self) -> (Vec<PollFd<'a>>, Vec<Tag>) {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4 + self.conns.len());
        let mut tags = Vec::with_capacity(4 + self.conns.len());
        let mut add = |fd: BorrowedFd<'a>, flags, tag| {
            fds.push(PollFd::new(fd, flags));
            tags.push(tag);
        };
        let inp = PollFlags::POLLIN;
        add(self.sigfd.as_fd(), inp, Tag::Signal);
        add(self.listener.as_fd(), inp, Tag::Listener);
        let backpressure = self.conns.iter().any(|c| c.unsent() > CLIENT_LIMIT);
        if !backpressure && self.linger_until.is_none() {
            if let Some(f) = &self.io.out {
                add(f.as_fd(), inp, Tag::Output(Stream::Stdout));
            }
            if let Some(f) = &self.io.err {
                add(f.as_fd(), inp, Tag::Output(Stream::Stderr));
            }
        }
        if let Some(f) = &self.io.stdin {
            if !self.io.stdin_buf.is_empty() {
                add(f.as_fd(), PollFlags::POLLOUT, Tag::Stdin);
            }
        }
        let stdin_full = self.io.stdin_buf.len() >= STDIN_LIMIT;
        for (i, c) in self.conns.iter().enumerate() {
            let mut flags = PollFlags::empty();
            let feeds_stdin = matches!(c.role, Role::Attached(s) if s.stdin);
            if !(feeds_stdin && stdin_full) {
                flags |= inp;
            }
            if c.unsent() > 0 {
                flags |= PollFlags::POLLOUT;
            }
            add(c.sock.as_fd(), flags, Tag::Conn(i));
        }
        (fds, tags)
    }

    fn signals(&mut self) {
        let mut child = false;
        while let Ok(Some(info)) = self.sigfd.read_signal() {
            child |= info.ssi_signo as i32 == libc::SIGCHLD;
        }
        if child {
            self.reap();
        }
    }

    /// Reaps every child that exited; the process's end starts the end of the shim, orphans
    /// re-parented to the subreaper are ignored.
    pub fn reap(&mut self) {
        while let Ok(Some((pid, status))) = berth_sys::process::reap_any_nohang() {
            if pid != self.pid || self.pid == 0 || self.exit.is_some() {
                continue;
            }
            let now = time::now();
            let mut x = match self.start_error.take() {
                Some(e) => Exit::never_started(e, now),
                None => Exit::from_wait_status(status, now),
            };
            x.oom_killed = self.oom.as_ref().is_some_and(|o| o.struck());
            self.ended(x);
        }
    }

    /// The process is gone (or never started): drain, then finish.
    pub fn ended(&mut self, x: Exit) {
        diag(&format!("process {} ended: {}", self.pid, x.to_json()));
        self.exit = Some(x);
        self.drain_until = Some(Instant::now() + DRAIN);
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    if self.conns.len() >= MAX_CONNS || s.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.conns.push(Conn::new(s));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    fn read_output(&mut self, stream: Stream) {
        let mut buf = [0u8; READ_CHUNK];
        let file = match stream {
            Stream::Stdout => &mut self.io.out,
            Stream::Stderr => &mut self.io.err,
        };
        let Some(f) = file else { return };
        match f.read(&mut buf) {
            Ok(n) if n > 0 => self.deliver(stream, &buf[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            // End of file, or EIO from a pty master whose terminal is closed everywhere.
            _ => {
                *file = None;
                if self.io.tty {
                    // The master was also stdin's descriptor: without a terminal it is of no use.
                    self.io.stdin = None;
                }
                self.log_end(stream);
            }
        }
    }

    /// Output of the process: to the log and every client attached to its stream.
    fn deliver(&mut self, stream: Stream, data: &[u8]) {
        if let Some(log) = &mut self.log {
            if let Err(e) = log.write(stream, data, &time::now()) {
                self.log_error(e);
            }
        }
        for c in &mut self.conns {
            if let Role::Attached(s) = c.role {
                let wants = match stream {
                    Stream::Stdout => s.stdout,
                    Stream::Stderr => s.stderr,
                };
                if wants {
                    frame::encode(c.queue(), stream.byte(), data);
                    c.flush();
                }
            }
        }
    }

    fn log_end(&mut self, stream: Stream) {
        if let Some(log) = &mut self.log {
            if let Err(e) = log.finish(stream, &time::now()) {
                self.log_error(e);
            }
        }
    }

    fn log_error(&mut self, e: crate::log::LogError) {
        if !self.log_failed {
            diag(&crate::error_chain(&e));
            self.log_failed = true;
        }
    }

    fn read_conn(&mut self, i: usize) {
        let mut buf = [0u8; 4096];
        let io = &mut self.io;
        let mut to_stdin = |input: Input<'_>| stdin_input(io, input);
        match self.conns[i].read(&mut buf, &mut to_stdin) {
            Got::Nothing => {}
            Got::Request(req, rest) => {
                self.request(i, req);
                let io = &mut self.io;
                let mut to_stdin = |input: Input<'_>| stdin_input(io, input);
                self.conns[i].frames(&mut rest.as_slice(), &mut to_stdin);
                self.conns[i].flush();
            }
        }
        if !self.io.stdin_buf.is_empty() || self.io.stdin_close {
            self.io.write_stdin();
        }
    }
}

/// A client's stdin frame: bytes are buffered for the process, a close closes its stdin once they are
/// written. Without `--stdin` there is nowhere to send them and they are dropped.
fn stdin_input(io: &mut Stdio, input: Input<'_>) {
    if io.stdin.is_none() {
        return;
    }
    match input {
        Input::Stdin(b) => io.stdin_buf.extend_from_slice(b),
        Input::Close => io.stdin_close = true,
    }
}

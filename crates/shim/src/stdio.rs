//! The process's stdio as the shim holds it: pipes (stdout, stderr and, with `--stdin`, stdin), or the
//! pty master with `--tty`; and what the runtime gets as its own stdio (its stderr is where its error
//! message comes from).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::pipe2;

use crate::runtime::read_available;

/// What the runtime is started with (moved into its `Command`, so closed in the shim after spawn).
pub struct ChildStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The shim's ends.
pub struct Stdio {
    pub tty: bool,
    /// The stdout pipe, or the pty master.
    pub out: Option<File>,
    /// The stderr pipe (none with a terminal).
    pub err: Option<File>,
    /// Where stdin bytes go: the stdin pipe, or a duplicate of the pty master; none without `--stdin`.
    pub stdin: Option<File>,
    /// Stdin bytes from clients not yet written.
    pub stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written (a kind-1 frame).
    pub stdin_close: bool,
    /// With a terminal: the read end of the runtime's stdout/stderr pipe.
    runtime_err: Option<File>,
    child: Option<ChildStdio>,
    want_stdin: bool,
}

fn nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(pipe2(OFlag::O_CLOEXEC)?)
}

fn dev_null() -> io::Result<OwnedFd> {
    Ok(File::options().read(true).write(true).open("/dev/null")?.into())
}

impl Stdio {
    /// Pipes for a process without a terminal; with one, only a pipe for the runtime's messages (the
    /// master comes later through [`Stdio::set_master`]).
    pub fn new(tty: bool, want_stdin: bool) -> io::Result<Stdio> {
        let mut s = Stdio {
            tty,
            out: None,
            err: None,
            stdin: None,
            stdin_buf: Vec::new(),
            stdin_close: false,
            runtime_err: None,
            child: None,
            want_stdin,
        };
        if tty {
            let (r, w) = pipe()?;
            nonblocking(&r)?;
            s.runtime_err = Some(r.into());
            s.child = Some(ChildStdio {
                stdin: dev_null()?,
                stdout: w.try_clone()?,
                stderr: w,
            });
            return Ok(s);
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let child_in = if want_stdin {
            let (in_r, in_w) = pipe()?;
            nonblocking(&in_w)?;
            s.stdin = Some(in_w.into());
            in_r
        } else {
            dev_null()?
        };
        nonblocking(&out_r)?;
        nonblocking(&err_r)?;
        s.out = Some(out_r.into());
        s.err = Some(err_r.into());
        s.child = Some(ChildStdio {
            stdin: child_in,
            stdout: out_w,
            stderr: err_w,
        });
        Ok(s)
    }

    /// The runtime's stdio, once.
    pub fn take_child(&mut self) -> Option<ChildStdio> {
        self.child.take()
    }

    /// The pty master the runtime sent.
    pub fn set_master(&mut self, master: OwnedFd) -> io::Result<()> {
        nonblocking(&master)?;
        let f = File::from(master);
        if self.want_stdin {
            self.stdin = Some(f.try_clone()?);
        }
        self.out = Some(f);
        self.runtime_err = None;
        Ok(())
    }

    /// What the runtime wrote on its stderr so far (the error message of a failed create or exec).
    pub fn runtime_output(&mut self) -> Vec<u8> {
        const KEEP: usize = 4096;
        match (&mut self.runtime_err, &mut self.err) {
            (Some(f), _) | (None, Some(f)) => read_available(f, KEEP),
            (None, None) => Vec::new(),
        }
    }

    /// Whether every output has reached its end.
    pub fn outputs_closed(&self) -> bool {
        self.out.is_none() && self.err.is_none()
    }

    /// Writes buffered stdin bytes; closes stdin once they are written and a close was asked for.
    /// A container that closed its end drops what is buffered.
    pub fn write_stdin(&mut self) {
        let Some(f) = &mut self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match f.write(&self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.stdin = None;
                    self.stdin_buf = Vec::new();
                    return;
                }
            }
        }
        if self.stdin_buf.is_empty() {
            self.stdin_buf.shrink_to(0);
            if self.stdin_close && !self.tty {
                self.stdin = None;
            }
        }
    }

    /// The pty master, with a terminal.
    pub fn master(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        if self.tty {
            self.out.as_ref().map(|f| f.as_fd())
        } else {
            None
        }
    }

    /// Closes everything (the end).
    pub fn close(&mut self) {
        self.out = None;
        self.err = None;
        self.stdin = None;
        self.stdin_buf = Vec::new();
        self.child = None;
        self.runtime_err = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn stdin_is_written_then_closed_on_request() {
        let mut s = Stdio::new(false, true).unwrap();
        let child = s.take_child().unwrap();
        assert!(s.take_child().is_none());
        let mut reader = File::from(child.stdin);
        s.stdin_buf.extend_from_slice(b"hello");
        s.stdin_close = true;
        s.write_stdin();
        assert!(s.stdin.is_none(), "closed once written");
        drop(child.stdout);
        drop(child.stderr);
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello");
    }

    #[test]
    fn without_stdin_the_child_reads_dev_null_and_output_ends_at_eof() {
        let mut s = Stdio::new(false, false).unwrap();
        assert!(s.stdin.is_none());
        let child = s.take_child().unwrap();
        let mut w = File::from(child.stderr);
        w.write_all(b"time=\"x\" level=error msg=\"boom\"\n").unwrap();
        assert_eq!(
            crate::runtime::error_message(&s.runtime_output()).as_deref(),
            Some("boom")
        );
        assert!(!s.outputs_closed());
        s.close();
        assert!(s.outputs_closed());
    }

    #[test]
    fn a_reader_that_went_away_drops_what_is_buffered() {
        let mut s = Stdio::new(false, true).unwrap();
        drop(s.take_child());
        s.stdin_buf.extend_from_slice(b"lost");
        s.write_stdin();
        assert!(s.stdin.is_none() && s.stdin_buf.is_empty());
    }
}

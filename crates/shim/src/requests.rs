//! Answers to the requests on the socket (PROTOCOL.md, "The socket").

use std::os::fd::AsFd;

use crate::args::Mode;
use crate::conn::Role;
use crate::exit::{self, Exit, State};
use crate::monitor::Shim;
use crate::request::{Request, RequestError};
use crate::{diag, setup, time};

/// An answer line on one line: newlines in a message become spaces.
fn err_line(msg: &str) -> String {
    format!("ERR {}", msg.replace(['\n', '\r'], " "))
}

impl Shim {
    /// Handles the request of connection `i` and queues its answer.
    pub fn request(&mut self, i: usize, req: Result<Request, RequestError>) {
        let (answer, role) = match req {
            Err(e) => (err_line(&e.to_string()), Role::Closing),
            Ok(Request::Start) => (reply(self.start().map(|p| p.to_string())), Role::Closing),
            Ok(Request::Attach(s)) => {
                // After the end there is no more output: the answer, then the connection closes.
                let role = if self.linger_until.is_some() {
                    Role::Closing
                } else {
                    Role::Attached(s)
                };
                ("OK".to_string(), role)
            }
            Ok(Request::Resize { rows, cols }) => (reply(self.resize(rows, cols)), Role::Closing),
            Ok(Request::Kill { signal, all }) => (reply(self.kill(signal, all)), Role::Closing),
            Ok(Request::Status) => (self.status(), Role::Closing),
            Ok(Request::Wait) => match (&self.exit, self.linger_until) {
                (Some(x), Some(_)) => (x.to_json(), Role::Closing),
                _ => {
                    self.conns[i].role = Role::Waiting;
                    return;
                }
            },
        };
        let c = &mut self.conns[i];
        c.answer(&answer);
        c.role = role;
    }

    fn status(&self) -> String {
        let state = match (&self.exit, self.started) {
            (Some(_), _) => State::Exited,
            (None, true) => State::Running,
            (None, false) => State::Created,
        };
        exit::status_json(state, self.pid, self.exit.as_ref())
    }

    /// START: `runtime start`, or `runtime exec -d` in exec mode.
    fn start(&mut self) -> Result<String, String> {
        if self.started || self.start_error.is_some() {
            return Err("already started".into());
        }
        if self.exit.is_some() {
            return Err(format!("process {} has exited", self.pid));
        }
        let result = match self.args.mode {
            Mode::Container { .. } => self.start_container(),
            Mode::Exec { .. } => self.start_exec(),
        };
        match &result {
            Ok(pid) => diag(&format!("started {pid}")),
            Err(e) => diag(&format!("start failed: {e}")),
        }
        result.map(|p| p.to_string())
    }

    fn start_container(&mut self) -> Result<i32, String> {
        match self.rt.run(&self.rt.verb(&["start"], &[])) {
            Ok(()) => {
                self.started = true;
                Ok(self.pid)
            }
            Err(e) => {
                // The init never ran the program: it is killed, and the EXIT carries the error.
                self.start_error = Some(e.clone());
                let _ = signal(self.pid, libc::SIGKILL);
                Err(e)
            }
        }
    }

    fn start_exec(&mut self) -> Result<i32, String> {
        let started = setup::run_runtime(&self.args, &self.rt, &mut self.io)
            .and_then(|console| setup::collect(&self.args, &mut self.io, console));
        match started {
            Ok(pid) => {
                self.pid = pid;
                self.started = true;
                if let (Some((rows, cols)), Some(m)) = (self.pending_size.take(), self.io.master()) {
                    let _ = berth_sys::term::set_window_size(m, rows, cols);
                }
                // It may have ended already (its SIGCHLD is pending, or came before the pid was known).
                self.reap();
                Ok(pid)
            }
            Err(e) => {
                let msg = crate::error_chain(&e);
                self.start_error = Some(msg.clone());
                self.ended(Exit::never_started(msg.clone(), time::now()));
                Err(msg)
            }
        }
    }

    fn resize(&mut self, rows: u16, cols: u16) -> Result<String, String> {
        if !self.args.tty {
            return Err("the process has no terminal".into());
        }
        match self.io.master() {
            Some(m) => berth_sys::term::set_window_size(m.as_fd(), rows, cols)
                .map(|_| String::new())
                .map_err(|e| format!("resize the terminal: {e}")),
            None if !self.started => {
                self.pending_size = Some((rows, cols));
                Ok(String::new())
            }
            None => Err("the terminal is closed".into()),
        }
    }

    fn kill(&mut self, sig: i32, all: bool) -> Result<String, String> {
        if all {
            if self.args.is_exec() {
                return Err("KILL all is for containers, not exec sessions".into());
            }
            let s = sig.to_string();
            return self
                .rt
                .run(&self.rt.verb(&["kill", "--all"], &[&s]))
                .map(|_| String::new());
        }
        if self.pid == 0 {
            return Err("the process has not started".into());
        }
        if self.exit.is_some() {
            return Err(format!("process {} is not running", self.pid));
        }
        signal(self.pid, sig)
            .map(|_| String::new())
            .map_err(|e| format!("kill {} with {sig}: {e}", self.pid))
    }
}

fn reply(r: Result<String, String>) -> String {
    match r {
        Ok(s) if s.is_empty() => "OK".to_string(),
        Ok(s) => format!("OK {s}"),
        Err(e) => err_line(&e),
    }
}

/// Signals a child not yet reaped (through a pidfd, so real-time signals by number work too).
fn signal(pid: i32, sig: i32) -> std::io::Result<()> {
    let fd = berth_sys::pidfd_open(pid)?;
    berth_sys::pidfd_send_signal(fd.as_fd(), sig)
}

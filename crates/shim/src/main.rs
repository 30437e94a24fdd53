//! berth-shim: one small monitor per container (or exec session). The protocol with berthd is in
//! `PROTOCOL.md`; the set-up is drawn in `setup.rs`, the loop is `monitor.rs`.

mod args;
mod conn;
mod end;
mod exit;
mod frame;
mod json;
mod log;
mod monitor;
mod oom;
mod request;
mod requests;
mod runtime;
mod setup;
mod sock;
mod stdio;
mod time;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use args::{Args, Mode};
use monitor::Shim;
use runtime::Runtime;
use setup::SetupError;
use stdio::Stdio;

/// A line in the shim's diagnostics (`shim.log`: stderr once daemonized).
pub fn diag(msg: &str) {
    eprintln!("{} berth-shim[{}]: {msg}", time::now(), std::process::id());
}

/// An error and its causes, `: `-separated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Writes the sync line and closes the sync pipe (stdout becomes /dev/null).
fn sync(result: &Result<(i32, i32), String>) {
    let mut out = std::io::stdout();
    let _ = out.write_all(exit::sync_line(result).as_bytes());
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
}

fn fail(msg: String) -> ExitCode {
    diag(&msg);
    sync(&Err(msg));
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    // Descriptors berthd leaked to us must not reach the runtime and the container.
    let _ = berth_sys::close_range_from(3);
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let a = match args::parse(&argv, &cwd) {
        Ok(a) => a,
        Err(e) => return fail(format!("berth-shim: {e}")),
    };
    if let Err(e) = setup::daemonize(&a) {
        return fail(error_chain(&e));
    }
    let mut undo = setup::Undo::default();
    match prepare(&a, &mut undo) {
        Ok(shim) => {
            sync(&Ok((std::process::id() as i32, shim.pid)));
            shim.run();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let msg = error_chain(&e);
            diag(&format!("set-up failed: {msg}"));
            undo.run(&Runtime::new(&a));
            sync(&Err(msg));
            ExitCode::FAILURE
        }
    }
}

/// Everything before the sync line: signals, the socket, the stdio, the log and, in container mode,
/// the runtime's create. What it made is noted in `undo`, for a failure.
fn prepare(a: &Args, undo: &mut setup::Undo) -> Result<Shim, SetupError> {
    let sigfd = setup::signals()?;
    let _ = std::fs::remove_file(a.exit_file());
    let listener = sock::listen(&a.socket())?;
    undo.files.push(a.socket());
    setup::write_pid_file(a)?;
    undo.files.push(a.file("shim", "pid"));
    let mut io = Stdio::new(a.tty, a.stdin).map_err(SetupError::Stdio)?;
    let rt = Runtime::new(a);
    let mut log = None;
    let mut pid = 0;
    if let Mode::Container { log: opts, .. } = &a.mode {
        if let Some(o) = opts {
            log = Some(log::JsonFile::open(o)?);
        }
        let console = setup::run_runtime(a, &rt, &mut io)?;
        undo.container = true;
        pid = setup::collect(a, &mut io, console)?;
        // What the runtime (or a hook) wrote before the program runs is not the container's output.
        let chatter = io.runtime_output();
        if !chatter.is_empty() {
            diag(&format!(
                "runtime said: {}",
                String::from_utf8_lossy(&chatter).trim_end()
            ));
        }
    }
    Ok(Shim {
        args: a.clone(),
        rt,
        listener,
        sigfd,
        io,
        log,
        conns: Vec::new(),
        pid,
        started: false,
        start_error: None,
        exit: None,
        drain_until: None,
        linger_until: None,
        pending_size: None,
        log_failed: false,
        oom: (pid > 0).then(|| oom::OomWatch::of(pid)).flatten(),
    })
}

//! `exec`: runs a new process inside a running container, described by `--process FILE` or by the
//! arguments after the id (defaults from the container's own process, overridden by the flags).

use std::path::PathBuf;

use berth_runtime::container::{self, ExecOptions};
use berth_runtime::plan::process::{cap_number, plan_process};
use berth_runtime::state::State;

use super::Verb;
use crate::args::{flag, opt, Parsed};
use crate::console::{self, ConsoleListener};
use crate::{Failure, Globals};

pub const VERB: Verb = Verb {
    name: "exec",
    summary: "execute new process inside the container",
    synopsis: "[command options] <container-id> <command> [command options]  ||  -p process.json <container-id>",
    flags: &[
        opt(&["console-socket"], "path to an AF_UNIX socket which will receive the pty master of the process's terminal"),
        opt(&["pidfd-socket"], "path to an AF_UNIX socket which will receive a pidfd of the process (not supported)"),
        opt(&["cwd"], "current working directory in the container"),
        opt(&["env", "e"], "set environment variables"),
        flag(&["tty", "t"], "allocate a pseudo-TTY"),
        opt(&["user", "u"], "UID (format: <uid>[:<gid>])"),
        opt(&["additional-gids", "g"], "additional gids"),
        opt(&["process", "p"], "path to the process.json"),
        flag(&["detach", "d"], "detach from the container's process"),
        opt(&["pid-file"], "specify the file to write the process id to"),
        opt(&["process-label"], "set the asm process label for the process commonly used with selinux"),
        opt(&["apparmor"], "set the apparmor profile for the process"),
        flag(&["no-new-privs"], "set the no new privileges value for the process"),
        opt(&["cap", "c"], "add a capability to the bounding set for the process"),
        opt(&["preserve-fds"], "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)"),
        opt(&["cgroup"], "run the process in an (existing) sub-cgroup (not supported)"),
        flag(&["ignore-paused"], "allow exec in a paused container"),
    ],
    stop_at_arg: true,
    min_args: 1,
    max_args: None,
    run,
};

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    for unsupported in ["pidfd-socket", "cgroup", "process-label"] {
        if p.value(unsupported).is_some() {
            return Err(Failure::new(format!(
                "--{unsupported} is not supported by berth-runtime"
            )));
        }
    }
    let id = super::id(p).to_string();
    let st = State::load(&g.root, &id)?;
    let process = build_process(p, &st)?;
    let detach = p.has("detach");
    let listen_fds: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut o = ExecOptions {
        root: g.root.clone(),
        id: id.clone(),
        process,
        console_socket: p.value("console-socket").map(PathBuf::from),
        pid_file: p.value("pid-file").map(PathBuf::from),
        detach,
        preserve_fds: p
            .number::<u32>("preserve-fds", 0)
            .map_err(|e| Failure::usage(e.to_string()))?
            + listen_fds,
        ignore_paused: p.has("ignore-paused"),
    };
    if o.process.terminal && detach && o.console_socket.is_none() {
        return Err(Failure::new(
            "cannot allocate tty if berth-runtime will detach without setting console socket",
        ));
    }
    if !o.process.terminal && o.console_socket.is_some() {
        return Err(Failure::new(
            "cannot use console socket if berth-runtime will not detach or allocate tty",
        ));
    }
    let listener = if o.process.terminal && o.console_socket.is_none() {
        let l =
            ConsoleListener::new(&g.root, &id).map_err(|e| Failure::new(format!("console socket: {e}")))?;
        o.console_socket = Some(l.path());
        Some(l)
    } else {
        None
    };
    let signals = if detach {
        None
    } else {
        Some(console::block_signals().map_err(|e| Failure::new(format!("block signals: {e}")))?)
    };
    let pid = container::exec(&o)?;
    let Some(signals) = signals else {
        return Ok(0);
    };
    let master = match &listener {
        Some(l) => Some(
            l.receive()
                .map_err(|e| Failure::new(format!("receive the console: {e}")))?,
        ),
        None => None,
    };
    let code = console::wait_foreground(pid, &signals, master)
        .map_err(|e| Failure::new(format!("wait for the process: {e}")))?;
    Ok(code.clamp(0, 255) as u8)
}

fn build_process(p: &Parsed, st: &State) -> Result<berth_runtime::plan::ProcessPlan, Failure> {
    if let Some(file) = p.value("process") {
        let data = std::fs::read(file).map_err(|e| Failure::new(format!("read {file}: {e}")))?;
        let proc_spec: berth_spec::Process =
            serde_json::from_slice(&data).map_err(|e| Failure::new(format!("parse {file}: {e}")))?;
        return Ok(plan_process(file, &proc_spec)?);
    }
    let args: Vec<String> = p.args[1..].to_vec();
    if args.is_empty() {
        return Err(Failure::usage(
            "exec: no command given: pass the command after the container id or --process",
        ));
    }
    let mut proc = st.process.clone();
    proc.args = args;
    proc.terminal = p.has("tty");
    proc.console_size = None;
    for e in p.values("env") {
        if !e.contains('=') {
            return Err(Failure::new(format!("--env {e:?}: not NAME=value")));
        }
        let name = e.split('=').next().unwrap_or("");
        proc.env.retain(|x| x.split('=').next() != Some(name));
        proc.env.push(e);
    }
    if let Some(cwd) = p.value("cwd") {
        proc.cwd = cwd.to_string();
    }
    if let Some(user) = p.value("user") {
        let (u, gid) = user
            .split_once(':')
            .map(|(u, g)| (u, Some(g)))
            .unwrap_or((user, None));
        proc.uid = u
            .parse()
            .map_err(|_| Failure::new(format!("parse uid {u:?}: only numeric ids are supported")))?;
        if let Some(gid) = gid {
            proc.gid = gid
                .parse()
                .map_err(|_| Failure::new(format!("parse gid {gid:?}: only numeric ids are supported")))?;
        }
    }
    for g in p.values("additional-gids") {
        proc.additional_gids.push(
            g.parse()
                .map_err(|_| Failure::new(format!("parse additional gid {g:?}")))?,
        );
    }
    for c in p.values("cap") {
        let bit = cap_number(&c).ok_or_else(|| Failure::new(format!("--cap {c:?}: unknown capability")))?;
        let m = 1u64 << bit;
        proc.caps.bounding |= m;
        proc.caps.effective |= m;
        proc.caps.permitted |= m;
        proc.caps.inheritable |= m;
        proc.caps.ambient |= m;
    }
    if p.has("no-new-privs") {
        proc.no_new_privileges = true;
    }
    if let Some(a) = p.value("apparmor") {
        proc.apparmor_profile = Some(a.to_string());
    }
    if !proc.cwd.starts_with('/') {
        return Err(Failure::new(format!(
            "--cwd {:?}: not an absolute path",
            proc.cwd
        )));
    }
    Ok(proc)
}

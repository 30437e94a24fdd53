//! `create`: creates the container; its process waits for `start`.

use std::path::PathBuf;

use berth_runtime::container::{self, CreateOptions};

use super::Verb;
use crate::args::{flag, opt, Parsed};
use crate::{Failure, Globals};

pub const FLAGS: &[crate::args::Flag] = &[
    opt(
        &["bundle", "b"],
        "path to the root of the bundle directory, defaults to the current directory",
    ),
    opt(
        &["console-socket"],
        "path to an AF_UNIX socket which will receive the pty master of the container's terminal",
    ),
    opt(
        &["pidfd-socket"],
        "path to an AF_UNIX socket which will receive a pidfd of the container's process (not supported)",
    ),
    opt(&["pid-file"], "specify the file to write the process id to"),
    flag(
        &["no-pivot"],
        "do not use pivot_root to jail the process inside rootfs (MS_MOVE and chroot instead)",
    ),
    flag(
        &["no-new-keyring"],
        "do not create a new session keyring for the container",
    ),
    opt(
        &["preserve-fds"],
        "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)",
    ),
];

pub const VERB: Verb = Verb {
    name: "create",
    summary: "create a container",
    synopsis: "[command options] <container-id>",
    flags: FLAGS,
    stop_at_arg: false,
    min_args: 1,
    max_args: Some(1),
    run,
};

/// The options shared by `create` and `run`.
pub fn options(p: &Parsed, g: &Globals, detach: bool) -> Result<CreateOptions, Failure> {
    if g.systemd_cgroup {
        return Err(Failure::new(
            "--systemd-cgroup: the systemd cgroup driver is not supported by berth-runtime",
        ));
    }
    if p.value("pidfd-socket").is_some() {
        return Err(Failure::new("--pidfd-socket is not supported by berth-runtime"));
    }
    let listen_fds: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let preserve: u32 = p
        .number("preserve-fds", 0)
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok(CreateOptions {
        root: g.root.clone(),
        id: super::id(p).to_string(),
        bundle: PathBuf::from(p.value("bundle").unwrap_or(".")),
        console_socket: p.value("console-socket").map(PathBuf::from),
        pid_file: p.value("pid-file").map(PathBuf::from),
        no_pivot: p.has("no-pivot"),
        no_new_keyring: p.has("no-new-keyring"),
        preserve_fds: preserve + listen_fds,
        systemd_cgroup: false,
        detach,
    })
}

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    let o = options(p, g, true)?;
    container::create(&o)?;
    Ok(0)
}

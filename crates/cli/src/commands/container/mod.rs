//! docker's container commands, one file per verb or family: `run` (run, create; flags in
//! `opts`, the request body in `config`), `start` (start, attach), `exec`, `ps`, `logs`,
//! `lifecycle` (stop, kill, restart, rm, wait, pause, unpause, rename), `inspect`
//! (inspect, top, diff, port), `stats`, `update`, `cp`, `export` (export, prune). The
//! hijacked streams are in `stream` and `session`.

pub mod config;
pub mod cp;
pub mod exec;
pub mod export;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod mount;
pub mod netopts;
pub mod opts;
pub mod paths;
pub mod ps;
pub mod run;
pub mod session;
pub mod start;
pub mod stats;
pub mod stream;
pub mod update;

#[cfg(test)]
mod tests;

use super::{Def, Group};

/// The top-level container commands (`berth run`, `berth ps`, ...).
pub const TOP: &[&Def] = &[
    &run::RUN,
    &run::CREATE,
    &start::START,
    &start::ATTACH,
    &exec::EXEC,
    &ps::PS,
    &logs::LOGS,
    &lifecycle::STOP,
    &lifecycle::KILL,
    &lifecycle::RESTART,
    &lifecycle::RM,
    &lifecycle::WAIT,
    &lifecycle::PAUSE,
    &lifecycle::UNPAUSE,
    &lifecycle::RENAME,
    &inspect::TOP,
    &inspect::DIFF,
    &inspect::PORT,
    &stats::STATS,
    &update::UPDATE,
    &cp::CP,
    &export::EXPORT,
];

pub const CONTAINER: Group = Group {
    name: "container",
    desc: "Manage containers",
    commands: &[
        ("attach", &start::ATTACH),
        ("cp", &cp::CP),
        ("create", &run::CREATE),
        ("diff", &inspect::DIFF),
        ("exec", &exec::EXEC),
        ("export", &export::EXPORT),
        ("inspect", &inspect::INSPECT),
        ("kill", &lifecycle::KILL),
        ("logs", &logs::LOGS),
        ("ls", &ps::PS),
        ("list", &ps::PS),
        ("ps", &ps::PS),
        ("pause", &lifecycle::PAUSE),
        ("port", &inspect::PORT),
        ("prune", &export::PRUNE),
        ("rename", &lifecycle::RENAME),
        ("restart", &lifecycle::RESTART),
        ("rm", &lifecycle::RM),
        ("remove", &lifecycle::RM),
        ("run", &run::RUN),
        ("start", &start::START),
        ("stats", &stats::STATS),
        ("stop", &lifecycle::STOP),
        ("top", &inspect::TOP),
        ("unpause", &lifecycle::UNPAUSE),
        ("update", &update::UPDATE),
        ("wait", &lifecycle::WAIT),
    ],
    listing: "  attach      Attach local standard input, output, and error streams to a running container
  cp          Copy files/folders between a container and the local filesystem
  create      Create a new container
  diff        Inspect changes to files or directories on a container's filesystem
  exec        Execute a command in a running container
  export      Export a container's filesystem as a tar archive
  inspect     Display detailed information on one or more containers
  kill        Kill one or more running containers
  logs        Fetch the logs of a container
  ls          List containers
  pause       Pause all processes within one or more containers
  port        List port mappings or a specific mapping for the container
  prune       Remove all stopped containers
  rename      Rename a container
  restart     Restart one or more containers
  rm          Remove one or more containers
  run         Create and run a new container from an image
  start       Start one or more stopped containers
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop one or more running containers
  top         Display the running processes of a container
  unpause     Unpause all processes within one or more containers
  update      Update configuration of one or more containers
  wait        Block until one or more containers stop, then print their exit codes
",
};

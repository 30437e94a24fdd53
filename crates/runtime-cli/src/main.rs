//! `berth-runtime`: an OCI runtime with runc's command line (verbs, flags, output, exit codes), so
//! that containerd, docker and podman can run it in place of runc. One small file per verb.

mod args;
mod console;
mod logging;
mod verbs;

use std::path::PathBuf;
use std::process::ExitCode;

use args::{flag, opt, Flag};
use logging::Logger;

/// The state root when `--root` is not given.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

const GLOBAL_FLAGS: &[Flag] = &[
    opt(
        &["root"],
        "root directory for storage of container state (default: /run/berth-runtime)",
    ),
    opt(
        &["log"],
        "set the log file to write berth-runtime logs to (default is stderr)",
    ),
    opt(
        &["log-format"],
        "set the log format ('text' (default), or 'json')",
    ),
    flag(&["debug"], "enable debug logging"),
    flag(
        &["systemd-cgroup"],
        "enable systemd cgroup support (not supported: fails with an error)",
    ),
    opt(
        &["criu"],
        "path to the criu binary (checkpoint/restore are not supported)",
    ),
    opt(
        &["rootless"],
        "ignore cgroup permission errors ('true', 'false', or 'auto')",
    ),
    flag(&["help", "h"], "show help"),
    flag(&["version", "v"], "print the version"),
];

/// What every verb gets: the global options.
pub struct Globals {
    pub root: PathBuf,
    pub log: Logger,
    pub systemd_cgroup: bool,
}

/// A verb's failure: the message, and the exit status (1 unless said otherwise).
pub struct Failure {
    pub message: String,
    pub code: u8,
    /// Print the verb's usage before the message (runc's "Incorrect Usage").
    pub usage: bool,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
            usage: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
            usage: true,
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::new(berth_runtime::error_chain(&e))
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Global flags come before the verb: parse up to the first word that is not a flag.
    let verb_at = first_positional(&argv);
    let (global_words, rest) = argv.split_at(verb_at);
    let log = Logger::default();
    let g = match args::parse(GLOBAL_FLAGS, global_words, false) {
        Ok(g) => g,
        Err(e) => {
            print!("{}", verbs::main_help());
            log.error(&e.to_string());
            return ExitCode::from(1);
        }
    };
    let log = Logger {
        file: g.value("log").filter(|s| !s.is_empty()).map(PathBuf::from),
        json: g.value("log-format") == Some("json"),
        debug: g.has("debug"),
    };
    if let Some(f) = g.value("log-format") {
        if f != "json" && f != "text" {
            log.error(&format!("invalid log-format: {f}"));
            return ExitCode::from(1);
        }
    }
    if g.has("version") {
        print!("{}", verbs::version());
        return ExitCode::SUCCESS;
    }
    let Some((verb, verb_args)) = rest.split_first() else {
        print!("{}", verbs::main_help());
        return ExitCode::SUCCESS;
    };
    if g.has("help") {
        print!("{}", verbs::main_help());
        return ExitCode::SUCCESS;
    }
    let globals = Globals {
        root: g
            .value("root")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
        log,
        systemd_cgroup: g.has("systemd-cgroup"),
    };
    globals.log.debug(&format!("berth-runtime {}", argv.join(" ")));
    match verbs::dispatch(verb, verb_args, &globals) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if f.usage {
                if let Some(u) = verbs::usage(verb) {
                    println!("Incorrect Usage.\n\n{u}");
                }
            }
            globals.log.error(&f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The index of the verb: the first word that is neither a global flag nor a global flag's value.
fn first_positional(argv: &[String]) -> usize {
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        let Some(body) = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-'))
            .filter(|b| !b.is_empty())
        else {
            return i;
        };
        let takes_value =
            !body.contains('=') && GLOBAL_FLAGS.iter().any(|f| f.value && f.names.contains(&body));
        i += if takes_value { 2 } else { 1 };
    }
    argv.len()
}

//! The verbs, their flags and their help. Each verb lives in its own file.

mod create;
mod delete;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use crate::args::{self, Flag, Parsed};
use crate::{Failure, Globals};

/// A verb: its name, one-line summary, argument synopsis, flags and implementation.
pub struct Verb {
    pub name: &'static str,
    pub summary: &'static str,
    pub synopsis: &'static str,
    pub flags: &'static [Flag],
    /// Whether parsing stops at the first argument (the rest is a command line).
    pub stop_at_arg: bool,
    pub min_args: usize,
    pub max_args: Option<usize>,
    pub run: fn(&Parsed, &Globals) -> Result<u8, Failure>,
}

const VERBS: &[&Verb] = &[
    &spec::VERB,
    &create::VERB,
    &start::VERB,
    &run::VERB,
    &state::VERB,
    &list::VERB,
    &kill::VERB,
    &delete::VERB,
    &exec::VERB,
    &ps::VERB,
    &pause::PAUSE,
    &pause::RESUME,
    &update::VERB,
    &features::VERB,
];

/// runc verbs berth-runtime does not have.
const UNSUPPORTED: &[&str] = &["checkpoint", "restore", "events"];

pub fn dispatch(name: &str, argv: &[String], g: &Globals) -> Result<u8, Failure> {
    if UNSUPPORTED.contains(&name) {
        return Err(Failure::new(format!("berth-runtime: {name:?} is not supported")));
    }
    let Some(verb) = VERBS.iter().find(|v| v.name == name) else {
        return Err(Failure {
            message: format!("No help topic for '{name}'"),
            code: 3,
            usage: false,
        });
    };
    if argv.iter().any(|a| a == "--help" || a == "-h")
        && !(verb.stop_at_arg && argv.first().is_some_and(|a| !a.starts_with('-')))
    {
        print!("{}", usage_of(verb));
        return Ok(0);
    }
    let p = args::parse(verb.flags, argv, verb.stop_at_arg).map_err(|e| Failure::usage(e.to_string()))?;
    if p.args.len() < verb.min_args {
        return Err(Failure::usage(format!(
            "berth-runtime: {name:?} requires a minimum of {} argument(s)",
            verb.min_args
        )));
    }
    if let Some(max) = verb.max_args {
        if p.args.len() > max {
            return Err(Failure::usage(format!(
                "berth-runtime: {name:?} requires a maximum of {max} argument(s)"
            )));
        }
    }
    (verb.run)(&p, g)
}

fn usage_of(v: &Verb) -> String {
    let mut s = format!(
        "NAME:\n   berth-runtime {} - {}\n\nUSAGE:\n   berth-runtime {} {}\n",
        v.name, v.summary, v.name, v.synopsis
    );
    if !v.flags.is_empty() {
        s.push_str("\nOPTIONS:\n");
        for f in v.flags {
            let names: Vec<String> = f
                .names
                .iter()
                .map(|n| {
                    if n.len() == 1 {
                        format!("-{n}")
                    } else {
                        format!("--{n}")
                    }
                })
                .collect();
            let value = if f.value { " value" } else { "" };
            s.push_str(&format!("   {}{}\t{}\n", names.join(", "), value, f.help));
        }
    }
    s
}

pub fn usage(name: &str) -> Option<String> {
    VERBS.iter().find(|v| v.name == name).map(|v| usage_of(v))
}

pub fn main_help() -> String {
    let mut s = String::from(
        "NAME:\n   berth-runtime - an OCI runtime with runc's command line\n\nUSAGE:\n   berth-runtime [global options] command [command options] [arguments...]\n\nCOMMANDS:\n",
    );
    for v in VERBS {
        s.push_str(&format!("   {:<10} {}\n", v.name, v.summary));
    }
    s.push_str("\nGLOBAL OPTIONS:\n");
    for f in crate::GLOBAL_FLAGS {
        s.push_str(&format!("   --{:<16} {}\n", f.names[0], f.help));
    }
    s
}

pub fn version() -> String {
    let seccomp = berth_seccomp::library_version().unwrap_or_else(|| "unknown".into());
    format!(
        "berth-runtime version {}\nspec: {}\nlibseccomp: {}\n",
        env!("CARGO_PKG_VERSION"),
        berth_spec::OCI_VERSION,
        seccomp
    )
}

/// The container id: the first argument.
pub fn id(p: &Parsed) -> &str {
    p.args.first().map(String::as_str).unwrap_or("")
}

//! berth: the command-line client of berthd, with docker's commands, flags, output and
//! exit codes. A client of the Docker Engine API only: it never touches the image store.

mod args;
mod commands;
mod config;
mod format;
mod goparse;
mod host;
mod http;
mod jsonmessage;
mod reference;
mod tabwriter;
mod template;
mod tty;
mod units;

use commands::{Ctx, Def, Group};
use std::io::Write;

/// Global options, before the command.
#[derive(Debug, Default, PartialEq)]
struct Globals {
    host: Option<String>,
    config: Option<String>,
    debug: bool,
}

/// What the words before the command asked for.
#[derive(Debug, PartialEq)]
enum Start {
    /// run the command at this index
    Command(usize),
    Help,
    Version,
    /// no command: usage on stderr, exit 0 (as docker)
    Nothing,
    Error(String),
}

const MAIN_USAGE: &str = "Usage:  berth [OPTIONS] COMMAND [ARG...]";

fn global_error(msg: String) -> Start {
    Start::Error(format!(
        "{msg}\n\n{MAIN_USAGE}\n\nRun 'berth --help' for more information"
    ))
}

fn parse_globals(argv: &[String], g: &mut Globals) -> Start {
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") || n.len() == 2 => (n, Some(v.to_string())),
            _ if !a.starts_with("--") && a.len() > 2 => (&a[..2], Some(a[2..].to_string())),
            _ => (a, None),
        };
        i += 1;
        let takes_value = matches!(
            name,
            "-H" | "--host" | "--config" | "-l" | "--log-level" | "-c" | "--context"
        );
        let value = if takes_value {
            match inline {
                Some(v) => Some(v),
                None if i < argv.len() => {
                    i += 1;
                    Some(argv[i - 1].clone())
                }
                None => {
                    let flag = if name.starts_with("--") {
                        name.to_string()
                    } else {
                        format!("'{}' in {name}", &name[1..])
                    };
                    return global_error(format!("flag needs an argument: {flag}"));
                }
            }
        } else {
            None
        };
        match name {
            "-H" | "--host" => g.host = value,
            "--config" => g.config = value,
            "-l" | "--log-level" => {}
            "-c" | "--context" => {
                let v = value.unwrap_or_default();
                if v != "default" {
                    return Start::Error(format!(
                        "context {v:?} does not exist: berth has no contexts (use -H or BERTH_HOST)"
                    ));
                }
            }
            "-D" | "--debug" => g.debug = true,
            "-v" | "--version" => return Start::Version,
            "-h" | "--help" => return Start::Help,
            n if n.starts_with("--") => {
                return global_error(format!("unknown flag: {n}"));
            }
            n => {
                return global_error(format!("unknown shorthand flag: '{}' in {a}", &n[1..2]));
            }
        }
    }
    if i >= argv.len() {
        Start::Nothing
    } else {
        Start::Command(i)
    }
}

fn print_err(msg: &str) {
    if !msg.is_empty() {
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
}

fn print_out(msg: &str) {
    let mut o = std::io::stdout();
    let _ = o.write_all(msg.as_bytes());
    let _ = o.flush();
}

/// Parses and runs one command invoked as `path`.
fn run_def(def: &Def, path: &str, rest: &[String], g: &Globals) -> i32 {
    let spec = def.spec(path);
    let parsed = match spec.parse(rest) {
        Ok(p) => p,
        Err(e) => {
            print_err(&e.message);
            return e.code;
        }
    };
    if parsed.help {
        print_out(&spec.usage_text());
        return 0;
    }
    let env_host = std::env::var("BERTH_HOST").ok();
    let (endpoint, is_default) = match host::choose(g.host.as_deref(), env_host.as_deref()) {
        Ok(x) => x,
        Err(e) => {
            print_err(&e);
            return 1;
        }
    };
    let ctx = Ctx::new(
        host::Api::new(endpoint, is_default),
        config::config_dir(g.config.as_deref()),
        g.debug,
    );
    match (def.run)(&ctx, &parsed) {
        Ok(()) => 0,
        Err(f) => {
            // a reader that went away (`berth save | head`) is not worth a message
            if !f.message.contains("Broken pipe") {
                print_err(&f.message);
            }
            f.code
        }
    }
}

fn run_group(group: &Group, rest: &[String], g: &Globals) -> i32 {
    let Some(sub) = rest.first() else {
        print_err(group.help().trim_end());
        return 0;
    };
    if sub == "--help" || sub == "-h" || sub == "help" {
        print_out(&group.help());
        return 0;
    }
    if let Some(def) = group.find(sub) {
        return run_def(def, &format!("{} {sub}", group.name), &rest[1..], g);
    }
    if group.name == "system" && (sub == "events" || sub == "prune") {
        print_err(&format!("berth: 'system {sub}' is not implemented yet"));
        return 1;
    }
    if sub.starts_with('-') {
        print_err(&format!(
            "unknown flag: {sub}\n\nUsage:  berth {} COMMAND\n\nRun 'berth {} --help' for more information",
            group.name, group.name
        ));
        return 125;
    }
    print_err(&format!(
        "berth: unknown command: berth {} {sub}\n\nUsage:  berth {}\n\nRun 'berth {} --help' for more information",
        group.name, group.name, group.name
    ));
    1
}

fn dispatch(argv: &[String]) -> i32 {
    let mut g = Globals::default();
    let i = match parse_globals(argv, &mut g) {
        Start::Command(i) => i,
        Start::Help => {
            print_out(commands::MAIN_HELP);
            return 0;
        }
        Start::Version => {
            print_out(&format!(
                "berth version {}, build {}\n",
                commands::system::VERSION,
                commands::system::GIT_COMMIT
            ));
            return 0;
        }
        Start::Nothing => {
            print_err(commands::MAIN_HELP.trim_end());
            return 0;
        }
        Start::Error(m) => {
            print_err(&m);
            return if m.starts_with("context") { 1 } else { 125 };
        }
    };
    let name = argv[i].as_str();
    let rest = &argv[i + 1..];
    match name {
        "image" => return run_group(&commands::IMAGE, rest, &g),
        "container" => return run_group(&commands::container::CONTAINER, rest, &g),
        "system" => return run_group(&commands::SYSTEM, rest, &g),
        "network" => return run_group(&commands::network::NETWORK, rest, &g),
        "volume" => return run_group(&commands::volume::VOLUME, rest, &g),
        "help" => {
            let mut help_args: Vec<String> = rest.to_vec();
            if help_args.is_empty() {
                print_out(commands::MAIN_HELP);
                return 0;
            }
            help_args.push("--help".into());
            return dispatch(&help_args);
        }
        _ => {}
    }
    if let Some(def) = commands::TOP
        .iter()
        .chain(commands::container::TOP)
        .find(|d| d.name == name)
    {
        return run_def(def, name, rest, &g);
    }
    if commands::LATER_COMMANDS.contains(&name) {
        print_err(&format!("berth: '{name}' is not implemented yet"));
        return 1;
    }
    print_err(&format!(
        "berth: unknown command: berth {name}\n\nRun 'berth --help' for more information"
    ));
    1
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = dispatch(&argv);
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globals() {
        let mut g = Globals::default();
        assert_eq!(
            parse_globals(&v(&["-H", "unix:///x.sock", "-D", "images", "-a"]), &mut g),
            Start::Command(3)
        );
        assert_eq!(g.host.as_deref(), Some("unix:///x.sock"));
        assert!(g.debug);
        let mut g = Globals::default();
        assert_eq!(
            parse_globals(
                &v(&["--host=tcp://127.0.0.1:1", "--config", "/c", "info"]),
                &mut g
            ),
            Start::Command(3)
        );
        assert_eq!(g.config.as_deref(), Some("/c"));
        assert_eq!(
            parse_globals(&v(&["-Hunix:///y", "info"]), &mut g),
            Start::Command(1)
        );
        assert_eq!(g.host.as_deref(), Some("unix:///y"));
        assert_eq!(parse_globals(&v(&["--version"]), &mut g), Start::Version);
        assert_eq!(parse_globals(&v(&["-v"]), &mut g), Start::Version);
        assert_eq!(parse_globals(&v(&[]), &mut g), Start::Nothing);
        assert_eq!(
            parse_globals(&v(&["--foo", "images"]), &mut g),
            Start::Error("unknown flag: --foo\n\nUsage:  berth [OPTIONS] COMMAND [ARG...]\n\nRun 'berth --help' for more information".into())
        );
        assert!(
            matches!(parse_globals(&v(&["-H"]), &mut g), Start::Error(m) if m.starts_with("flag needs an argument: 'H' in -H"))
        );
    }

    #[test]
    fn exit_codes_without_a_daemon() {
        let host = v(&["-H", "unix:///nonexistent/berth-test.sock"]);
        let with = |a: &[&str]| {
            let mut x = host.clone();
            x.extend(v(a));
            dispatch(&x)
        };
        assert_eq!(with(&["frobnicate"]), 1);
        assert_eq!(with(&["run", "busybox"]), 125);
        assert_eq!(with(&["ps"]), 1);
        assert_eq!(with(&["run", "--memory", "5x", "busybox"]), 125);
        assert_eq!(with(&["container", "ls", "--help"]), 0);
        assert_eq!(with(&["commit", "x"]), 1);
        assert_eq!(with(&["images", "--nope"]), 125);
        assert_eq!(with(&["tag", "x"]), 1);
        assert_eq!(with(&["images", "--help"]), 0);
        assert_eq!(with(&["image", "ls", "-h"]), 0);
        assert_eq!(with(&["image", "nope"]), 1);
        assert_eq!(with(&["images"]), 1);
    }
}

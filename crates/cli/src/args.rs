//! docker's (cobra/pflag) flag syntax: `-a`, `--all`, `--flag=value`, `--flag value`,
//! `-fvalue`, combined short flags `-aq`, `--` ending the flags, flags mixed with arguments;
//! and its usage errors, word for word.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// a value; given again, the last one wins
    Value,
    /// a value that may be repeated (filters, changes)
    List,
}

/// A flag value check: the error after `flag: `.
pub type Check = fn(&str) -> Result<(), String>;

#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub short: Option<char>,
    pub long: &'static str,
    pub kind: Kind,
    /// pflag's typed values: a value this refuses is a usage error at parse time
    /// (`invalid argument "5x" for "-m, --memory" flag: invalid suffix: 'x'`)
    pub check: Option<Check>,
}

impl Flag {
    /// This flag with a value check.
    pub const fn checked(mut self, check: Check) -> Flag {
        self.check = Some(check);
        self
    }
}

pub const fn bool_flag(short: Option<char>, long: &'static str) -> Flag {
    Flag {
        short,
        long,
        kind: Kind::Bool,
        check: None,
    }
}

pub const fn value_flag(short: Option<char>, long: &'static str) -> Flag {
    Flag {
        short,
        long,
        kind: Kind::Value,
        check: None,
    }
}

pub const fn list_flag(short: Option<char>, long: &'static str) -> Flag {
    Flag {
        short,
        long,
        kind: Kind::List,
        check: None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    None,
    Exact(usize),
    Min(usize),
    Max(usize),
    /// at least this many, and flags end at the first argument: what follows is a
    /// command line of its own (`run IMAGE [COMMAND] [ARG...]`, pflag's
    /// `SetInterspersed(false)`)
    Command(usize),
}

/// One command: its path (`image ls`), usage line, help text and flags.
#[derive(Debug)]
pub struct Spec {
    pub path: String,
    /// after `berth `: `images [OPTIONS] [REPOSITORY[:TAG]]`
    pub usage: String,
    /// the whole `--help` text after the usage line
    pub help: String,
    pub flags: &'static [Flag],
    pub count: Count,
}

/// A usage error: the message, exit code and the command it is about.
#[derive(Debug, PartialEq)]
pub struct UsageError {
    pub message: String,
    pub code: i32,
}

#[derive(Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
    pub args: Vec<String>,
    pub help: bool,
}

impl Parsed {
    pub fn bool(&self, long: &str) -> bool {
        self.values
            .get(long)
            .and_then(|v| v.last())
            .is_some_and(|v| v == "true")
    }

    pub fn value(&self, long: &str) -> Option<&str> {
        self.values.get(long).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn values(&self, long: &str) -> &[String] {
        self.values.get(long).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_set(&self, long: &str) -> bool {
        self.values.contains_key(long)
    }
}

impl Spec {
    pub fn usage_text(&self) -> String {
        format!("Usage:  berth {}\n\n{}", self.usage, self.help)
    }

    fn error(&self, message: String, code: i32, see: &str) -> UsageError {
        UsageError {
            message: format!(
                "{message}\n\nUsage:  berth {}\n\n{see} 'berth {} --help' for more information",
                self.usage, self.path
            ),
            code,
        }
    }

    fn flag_error(&self, message: String) -> UsageError {
        self.error(message, 125, "Run")
    }

    fn find_long(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.long == name)
    }

    fn find_short(&self, c: char) -> Option<&Flag> {
        self.flags.iter().find(|f| f.short == Some(c))
    }

    fn set(&self, p: &mut Parsed, f: &Flag, value: String) -> Result<(), UsageError> {
        let value = if f.kind == Kind::Bool {
            match parse_bool(&value) {
                Some(b) => b.to_string(),
                None => {
                    return Err(self.flag_error(format!(
                        "invalid argument {value:?} for \"{}\" flag: strconv.ParseBool: parsing {value:?}: invalid syntax",
                        flag_name(f)
                    )))
                }
            }
        } else {
            if let Some(check) = f.check {
                if let Err(e) = check(&value) {
                    return Err(self.flag_error(format!(
                        "invalid argument {value:?} for \"{}\" flag: {e}",
                        flag_name(f)
                    )));
                }
            }
            value
        };
        let entry = p.values.entry(f.long).or_default();
        if f.kind == Kind::List {
            entry.push(value);
        } else {
            *entry = vec![value];
        }
        Ok(())
    }

    /// Parses the arguments after the command's name.
    pub fn parse(&self, argv: &[String]) -> Result<Parsed, UsageError> {
        let mut p = Parsed::default();
        let mut i = 0;
        while i < argv.len() {
            let a = &argv[i];
            i += 1;
            if a == "--" {
                p.args.extend(argv[i..].iter().cloned());
                break;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                if name == "help" {
                    p.help = true;
                    continue;
                }
                let Some(f) = self.find_long(name) else {
                    return Err(self.flag_error(format!("unknown flag: --{name}")));
                };
                let value = match (inline, f.kind) {
                    (Some(v), _) => v,
                    (None, Kind::Bool) => "true".into(),
                    (None, _) => {
                        if i >= argv.len() {
                            return Err(self.flag_error(format!("flag needs an argument: --{name}")));
                        }
                        i += 1;
                        argv[i - 1].clone()
                    }
                };
                self.set(&mut p, f, value)?;
            } else if a.len() > 1 && a.starts_with('-') {
                let shorts: Vec<char> = a[1..].chars().collect();
                let mut j = 0;
                while j < shorts.len() {
                    let c = shorts[j];
                    j += 1;
                    if c == 'h' && self.find_short('h').is_none() {
                        p.help = true;
                        continue;
                    }
                    let Some(f) = self.find_short(c) else {
                        return Err(self.flag_error(format!("unknown shorthand flag: '{c}' in {a}")));
                    };
                    let rest: String = shorts[j..].iter().collect();
                    if let Some(v) = rest.strip_prefix('=') {
                        self.set(&mut p, f, v.to_string())?;
                        break;
                    }
                    if f.kind == Kind::Bool {
                        self.set(&mut p, f, "true".into())?;
                        continue;
                    }
                    let value = if !rest.is_empty() {
                        rest
                    } else if i < argv.len() {
                        i += 1;
                        argv[i - 1].clone()
                    } else {
                        return Err(self.flag_error(format!("flag needs an argument: '{c}' in -{c}")));
                    };
                    self.set(&mut p, f, value)?;
                    break;
                }
            } else {
                p.args.push(a.clone());
                if matches!(self.count, Count::Command(_)) {
                    p.args.extend(argv[i..].iter().cloned());
                    break;
                }
            }
        }
        if !p.help {
            self.check_count(p.args.len())?;
        }
        Ok(p)
    }

    fn check_count(&self, n: usize) -> Result<(), UsageError> {
        let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
        let cmd = format!("berth: 'berth {}'", self.path);
        let (msg, see) = match self.count {
            Count::None if n > 0 => (format!("{cmd} accepts no arguments"), "Run"),
            Count::Exact(k) if n != k => (format!("{cmd} requires {k} {}", plural(k)), "Run"),
            Count::Min(k) | Count::Command(k) if n < k => {
                (format!("{cmd} requires at least {k} {}", plural(k)), "See")
            }
            Count::Max(k) if n > k => (format!("{cmd} requires at most {k} {}", plural(k)), "Run"),
            _ => return Ok(()),
        };
        Err(self.error(msg, 1, see))
    }
}

fn flag_name(f: &Flag) -> String {
    match f.short {
        Some(c) => format!("-{c}, --{}", f.long),
        None => format!("--{}", f.long),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        bool_flag(Some('a'), "all"),
        bool_flag(Some('q'), "quiet"),
        list_flag(Some('f'), "filter"),
        value_flag(None, "format"),
    ];
    fn spec() -> Spec {
        Spec {
            path: "images".into(),
            usage: "images [OPTIONS] [REPOSITORY[:TAG]]".into(),
            help: "List images\n".into(),
            flags: FLAGS,
            count: Count::Max(1),
        }
    }

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_docker_syntax() {
        let p = spec()
            .parse(&v(&[
                "-aq",
                "busybox",
                "--filter",
                "dangling=true",
                "-flabel=x",
                "--format={{.ID}}",
            ]))
            .unwrap();
        assert!(p.bool("all") && p.bool("quiet"));
        assert_eq!(p.values("filter"), ["dangling=true", "label=x"]);
        assert_eq!(p.value("format"), Some("{{.ID}}"));
        assert_eq!(p.args, ["busybox"]);
        let p = spec()
            .parse(&v(&["--all=false", "-f", "a=b", "--", "-x"]))
            .unwrap();
        assert!(!p.bool("all"));
        assert_eq!(p.args, ["-x"]);
        let p = spec().parse(&v(&["-a=false", "-h"])).unwrap();
        assert!(!p.bool("all") && p.help);
        assert!(spec().parse(&v(&["--help", "a", "b"])).unwrap().help);
    }

    #[test]
    fn errors_match_docker() {
        let e = spec().parse(&v(&["--foo"])).unwrap_err();
        assert_eq!(e.code, 125);
        assert_eq!(
            e.message,
            "unknown flag: --foo\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information"
        );
        let e = spec().parse(&v(&["-az"])).unwrap_err();
        assert!(e.message.starts_with("unknown shorthand flag: 'z' in -az\n"));
        let e = spec().parse(&v(&["-f"])).unwrap_err();
        assert!(e.message.starts_with("flag needs an argument: 'f' in -f\n"));
        let e = spec().parse(&v(&["--format"])).unwrap_err();
        assert!(e.message.starts_with("flag needs an argument: --format\n"));
        let e = spec().parse(&v(&["--all=maybe"])).unwrap_err();
        assert!(e.message.starts_with(
            "invalid argument \"maybe\" for \"-a, --all\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax\n"
        ));
        let e = spec().parse(&v(&["a", "b"])).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e
            .message
            .starts_with("berth: 'berth images' requires at most 1 argument\n\nUsage:"));
        let tag = Spec {
            path: "tag".into(),
            usage: "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]".into(),
            help: String::new(),
            flags: &[],
            count: Count::Exact(2),
        };
        assert_eq!(
            tag.parse(&v(&["x"])).unwrap_err().message,
            "berth: 'berth tag' requires 2 arguments\n\nUsage:  berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\nRun 'berth tag --help' for more information"
        );
        let rmi = Spec {
            path: "rmi".into(),
            usage: "rmi [OPTIONS] IMAGE [IMAGE...]".into(),
            help: String::new(),
            flags: &[],
            count: Count::Min(1),
        };
        assert!(rmi
            .parse(&[])
            .unwrap_err()
            .message
            .ends_with("See 'berth rmi --help' for more information"));
    }
}

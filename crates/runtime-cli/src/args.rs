//! Command-line parsing with the rules of runc's (Go `flag` via urfave/cli): `--flag value`,
//! `--flag=value`, `-flag value` (one dash or two), boolean flags with an optional `=true|false`,
//! repeatable flags, and `--` ending the flags. Flags may follow positional arguments unless the verb
//! stops at its first argument (exec, whose remaining words are the command).

use std::collections::HashMap;

/// One flag of a verb: its names (the first is the canonical one), whether it takes a value.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub names: &'static [&'static str],
    pub value: bool,
    pub help: &'static str,
}

pub const fn flag(names: &'static [&'static str], help: &'static str) -> Flag {
    Flag {
        names,
        value: false,
        help,
    }
}

pub const fn opt(names: &'static [&'static str], help: &'static str) -> Flag {
    Flag {
        names,
        value: true,
        help,
    }
}

#[derive(Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
    pub args: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ArgError {
    /// `flag provided but not defined: -x`
    Unknown(String),
    /// `flag needs an argument: -x`
    NeedsValue(String),
    /// `invalid boolean value "x" for -flag`
    BadBool(String, String),
    /// `invalid value "x" for flag -flag: ...`
    BadValue(String, String, String),
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgError::Unknown(n) => write!(f, "flag provided but not defined: -{n}"),
            ArgError::NeedsValue(n) => write!(f, "flag needs an argument: -{n}"),
            ArgError::BadBool(v, n) => write!(f, "invalid boolean value {v:?} for -{n}: parse error"),
            ArgError::BadValue(v, n, why) => write!(f, "invalid value {v:?} for flag -{n}: {why}"),
        }
    }
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .is_some_and(|v| v == "true")
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn values(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A numeric flag, with Go's error text on a bad number.
    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ArgError> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ArgError::BadValue(v.to_string(), name.to_string(), "parse error".into())),
        }
    }
}

/// Parses `argv` (the words after the verb) against `flags`.
pub fn parse(flags: &[Flag], argv: &[String], stop_at_first_arg: bool) -> Result<Parsed, ArgError> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if a == "--" {
            out.args.extend(argv[i..].iter().cloned());
            break;
        }
        let body = match a.strip_prefix("--").or_else(|| a.strip_prefix('-')) {
            Some(b) if !b.is_empty() && a != "-" => b,
            _ => {
                out.args.push(a.clone());
                if stop_at_first_arg {
                    out.args.extend(argv[i..].iter().cloned());
                    break;
                }
                continue;
            }
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let f = flags
            .iter()
            .find(|f| f.names.contains(&name))
            .ok_or_else(|| ArgError::Unknown(name.to_string()))?;
        let canonical = f.names[0];
        let value = if f.value {
            match inline {
                Some(v) => v,
                None => {
                    let v = argv
                        .get(i)
                        .cloned()
                        .ok_or_else(|| ArgError::NeedsValue(name.to_string()))?;
                    i += 1;
                    v
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") | Some("1") | Some("t") | Some("T") | Some("TRUE") | Some("True") => {
                    "true".to_string()
                }
                Some("false") | Some("0") | Some("f") | Some("F") | Some("FALSE") | Some("False") => {
                    "false".to_string()
                }
                Some(v) => return Err(ArgError::BadBool(v.to_string(), name.to_string())),
            }
        };
        out.values.entry(canonical).or_default().push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        opt(&["bundle", "b"], ""),
        flag(&["detach", "d"], ""),
        opt(&["env", "e"], ""),
        opt(&["preserve-fds"], ""),
    ];

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn go_flag_forms() {
        let p = parse(FLAGS, &v(&["--bundle", "/b", "-d", "id"]), false).unwrap();
        assert_eq!(p.value("bundle"), Some("/b"));
        assert!(p.has("detach"));
        assert_eq!(p.args, v(&["id"]));
        let p = parse(
            FLAGS,
            &v(&["-bundle=/x", "id", "--detach=false", "-e", "A=1", "--env=B=2"]),
            false,
        )
        .unwrap();
        assert_eq!(p.value("bundle"), Some("/x"));
        assert!(!p.has("detach"));
        assert_eq!(p.values("env"), v(&["A=1", "B=2"]));
    }

    #[test]
    fn stop_at_first_argument_and_double_dash() {
        let p = parse(FLAGS, &v(&["-d", "id", "sh", "-c", "echo"]), true).unwrap();
        assert_eq!(p.args, v(&["id", "sh", "-c", "echo"]));
        let p = parse(FLAGS, &v(&["--", "-d"]), false).unwrap();
        assert_eq!(p.args, v(&["-d"]));
    }

    #[test]
    fn errors_read_like_go() {
        assert_eq!(
            parse(FLAGS, &v(&["--bogus"]), false).unwrap_err().to_string(),
            "flag provided but not defined: -bogus"
        );
        assert_eq!(
            parse(FLAGS, &v(&["--bundle"]), false).unwrap_err().to_string(),
            "flag needs an argument: -bundle"
        );
        assert!(parse(FLAGS, &v(&["--detach=maybe"]), false).is_err());
        let p = parse(FLAGS, &v(&["--preserve-fds", "x"]), false).unwrap();
        assert!(p.number::<u32>("preserve-fds", 0).is_err());
    }
}

//! The first line of a connection (PROTOCOL.md, "The socket").

/// The longest request line accepted (without its newline).
pub const MAX_LINE: usize = 256;

/// Which outputs (and whether the input) an ATTACH connection wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Start,
    Attach(Streams),
    Resize { rows: u16, cols: u16 },
    Kill { signal: i32, all: bool },
    Status,
    Wait,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("empty request")]
    Empty,
    #[error("unknown request {0:?}")]
    Unknown(String),
    #[error("{0}: wrong number of arguments")]
    Arity(&'static str),
    #[error("ATTACH: unknown stream {0:?}")]
    Stream(String),
    #[error("RESIZE: {0:?} is not a size")]
    Size(String),
    #[error("KILL: unknown signal {0:?}")]
    Signal(String),
    #[error("KILL: {0:?} is not \"all\"")]
    NotAll(String),
    #[error("request line is not text")]
    NotText,
    #[error("request line longer than {MAX_LINE} bytes")]
    TooLong,
}

/// Names of the signals that have them (as `kill -l` prints them, without `SIG`).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// A signal by number (1-64) or name (`KILL`, `SIGKILL`, `kill`).
pub fn signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn size(s: &str) -> Result<u16, RequestError> {
    s.parse().map_err(|_| RequestError::Size(s.to_string()))
}

/// Parses one request line (without its `\n`; a trailing `\r` is allowed).
pub fn parse(line: &[u8]) -> Result<Request, RequestError> {
    let line = std::str::from_utf8(line).map_err(|_| RequestError::NotText)?;
    let mut words = line.split_whitespace();
    let verb = words.next().ok_or(RequestError::Empty)?;
    let args: Vec<&str> = words.collect();
    let arity = |name: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(RequestError::Arity(name))
        }
    };
    match verb {
        "START" => arity("START", args.is_empty()).map(|_| Request::Start),
        "STATUS" => arity("STATUS", args.is_empty()).map(|_| Request::Status),
        "WAIT" => arity("WAIT", args.is_empty()).map(|_| Request::Wait),
        "ATTACH" => {
            arity("ATTACH", (1..=3).contains(&args.len()))?;
            let mut s = Streams::default();
            for a in args {
                let slot = match a {
                    "stdin" => &mut s.stdin,
                    "stdout" => &mut s.stdout,
                    "stderr" => &mut s.stderr,
                    other => return Err(RequestError::Stream(other.to_string())),
                };
                *slot = true;
            }
            Ok(Request::Attach(s))
        }
        "RESIZE" => {
            arity("RESIZE", args.len() == 2)?;
            Ok(Request::Resize {
                rows: size(args[0])?,
                cols: size(args[1])?,
            })
        }
        "KILL" => {
            arity("KILL", (1..=2).contains(&args.len()))?;
            let signal = signal(args[0]).ok_or_else(|| RequestError::Signal(args[0].to_string()))?;
            let all = match args.get(1) {
                None => false,
                Some(&"all") => true,
                Some(other) => return Err(RequestError::NotAll(other.to_string())),
            };
            Ok(Request::Kill { signal, all })
        }
        other => Err(RequestError::Unknown(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Request, RequestError> {
        parse(s.as_bytes())
    }

    #[test]
    fn every_request() {
        assert_eq!(p("START"), Ok(Request::Start));
        assert_eq!(p("STATUS\r"), Ok(Request::Status));
        assert_eq!(p("WAIT"), Ok(Request::Wait));
        assert_eq!(
            p("ATTACH stdout stderr"),
            Ok(Request::Attach(Streams {
                stdin: false,
                stdout: true,
                stderr: true
            }))
        );
        assert_eq!(
            p("ATTACH stdin"),
            Ok(Request::Attach(Streams {
                stdin: true,
                ..Default::default()
            }))
        );
        assert_eq!(p("RESIZE 30 100"), Ok(Request::Resize { rows: 30, cols: 100 }));
        assert_eq!(
            p("KILL 9"),
            Ok(Request::Kill {
                signal: 9,
                all: false
            })
        );
        assert_eq!(
            p("KILL 15 all"),
            Ok(Request::Kill {
                signal: 15,
                all: true
            })
        );
        assert_eq!(
            p("KILL SIGTERM"),
            Ok(Request::Kill {
                signal: 15,
                all: false
            })
        );
        assert_eq!(
            p("KILL hup"),
            Ok(Request::Kill {
                signal: 1,
                all: false
            })
        );
        assert_eq!(
            p("KILL 34"),
            Ok(Request::Kill {
                signal: 34,
                all: false
            })
        );
    }

    #[test]
    fn errors() {
        assert_eq!(p(""), Err(RequestError::Empty));
        assert_eq!(p("start"), Err(RequestError::Unknown("start".into())));
        assert_eq!(p("START now"), Err(RequestError::Arity("START")));
        assert_eq!(p("ATTACH"), Err(RequestError::Arity("ATTACH")));
        assert_eq!(
            p("ATTACH stdout stdlog"),
            Err(RequestError::Stream("stdlog".into()))
        );
        assert_eq!(p("RESIZE 30"), Err(RequestError::Arity("RESIZE")));
        assert_eq!(p("RESIZE 30 -1"), Err(RequestError::Size("-1".into())));
        assert_eq!(p("RESIZE 70000 1"), Err(RequestError::Size("70000".into())));
        assert_eq!(p("KILL 0"), Err(RequestError::Signal("0".into())));
        assert_eq!(p("KILL 65"), Err(RequestError::Signal("65".into())));
        assert_eq!(p("KILL NOPE"), Err(RequestError::Signal("NOPE".into())));
        assert_eq!(p("KILL 9 some"), Err(RequestError::NotAll("some".into())));
        assert_eq!(parse(b"KILL \xff"), Err(RequestError::NotText));
        assert_eq!(
            RequestError::Signal("X".into()).to_string(),
            "KILL: unknown signal \"X\""
        );
    }
}

//! The command line (PROTOCOL.md, "Invocation"): `--flag value` or `--flag=value`, every path made
//! absolute against the working directory (the shim moves to `/` once it is a daemon).

use std::path::{Path, PathBuf};

/// What the shim runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `--bundle`: `runtime create`, then `start` on START.
    Container {
        bundle: PathBuf,
        log: Option<LogOpts>,
        unmount: Option<PathBuf>,
    },
    /// `--exec EXECID --process FILE`: `runtime exec -d` on START.
    Exec { exec_id: String, process: PathBuf },
}

/// `--log FILE [--log-max-size BYTES] [--log-max-files N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOpts {
    pub path: PathBuf,
    /// 0: no limit.
    pub max_size: u64,
    pub max_files: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub runtime: PathBuf,
    pub runtime_root: Option<PathBuf>,
    pub id: String,
    pub dir: PathBuf,
    pub mode: Mode,
    pub tty: bool,
    pub stdin: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("unknown flag {0}")]
    Unknown(String),
    #[error("flag {0} needs a value")]
    NoValue(String),
    #[error("flag {0} given twice")]
    Twice(String),
    #[error("unexpected argument {0:?}")]
    Positional(String),
    #[error("--{0} is required")]
    Missing(&'static str),
    #[error("--{0}: {1:?} is not a {2}")]
    Invalid(&'static str, String, &'static str),
    #[error("give either --bundle or --exec, not both")]
    BothModes,
    #[error("--{0} goes with {1}")]
    Misplaced(&'static str, &'static str),
    #[error("--{0}: {1:?} must be a plain name")]
    BadName(&'static str, String),
}

const VALUE_FLAGS: &[&str] = &[
    "runtime",
    "runtime-root",
    "id",
    "dir",
    "bundle",
    "exec",
    "process",
    "log",
    "log-max-size",
    "log-max-files",
    "unmount",
];
const BOOL_FLAGS: &[&str] = &["tty", "stdin"];

/// The flags as given: name -> value ("" for booleans).
#[derive(Default)]
struct Raw {
    seen: Vec<(&'static str, String)>,
}

impl Raw {
    fn get(&self, name: &str) -> Option<&str> {
        self.seen
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn lex(argv: &[String]) -> Result<Raw, ArgsError> {
    let mut raw = Raw::default();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let Some(body) = a.strip_prefix("--") else {
            return Err(ArgsError::Positional(a.clone()));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let value = if let Some(n) = VALUE_FLAGS.iter().find(|f| **f == name) {
            let v = match inline {
                Some(v) => v,
                None => it.next().cloned().ok_or_else(|| ArgsError::NoValue(a.clone()))?,
            };
            (*n, v)
        } else if let Some(n) = BOOL_FLAGS.iter().find(|f| **f == name) {
            if inline.is_some() {
                return Err(ArgsError::Unknown(a.clone()));
            }
            (*n, String::new())
        } else {
            return Err(ArgsError::Unknown(a.clone()));
        };
        if raw.has(value.0) {
            return Err(ArgsError::Twice(format!("--{}", value.0)));
        }
        raw.seen.push(value);
    }
    Ok(raw)
}

fn number<T: std::str::FromStr>(raw: &Raw, name: &'static str) -> Result<Option<T>, ArgsError> {
    raw.get(name)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| ArgsError::Invalid(name, v.to_string(), "number"))
        })
        .transpose()
}

/// An id that becomes part of file names: no separators, not empty.
fn name(raw: &Raw, flag: &'static str) -> Result<Option<String>, ArgsError> {
    match raw.get(flag) {
        Some(v) if v.is_empty() || v.contains('/') || v == "." || v == ".." => {
            Err(ArgsError::BadName(flag, v.to_string()))
        }
        v => Ok(v.map(str::to_string)),
    }
}

/// Parses the arguments after the program name; relative paths are taken against `cwd`.
pub fn parse(argv: &[String], cwd: &Path) -> Result<Args, ArgsError> {
    let raw = lex(argv)?;
    let path = |n: &str| raw.get(n).map(|v| cwd.join(v));
    let runtime = raw.get("runtime").ok_or(ArgsError::Missing("runtime"))?;
    // A bare runtime name ("runc") is looked up on PATH at spawn time; a path is made absolute.
    let runtime = if runtime.contains('/') {
        cwd.join(runtime)
    } else {
        PathBuf::from(runtime)
    };
    let id = name(&raw, "id")?.ok_or(ArgsError::Missing("id"))?;
    let dir = path("dir").ok_or(ArgsError::Missing("dir"))?;
    let mode = match (path("bundle"), name(&raw, "exec")?) {
        (Some(_), Some(_)) => return Err(ArgsError::BothModes),
        (None, None) => return Err(ArgsError::Missing("bundle or --exec")),
        (Some(bundle), None) => {
            if raw.has("process") {
                return Err(ArgsError::Misplaced("process", "--exec"));
            }
            container_mode(&raw, bundle, cwd)?
        }
        (None, Some(exec_id)) => {
            for f in ["log", "log-max-size", "log-max-files", "unmount"] {
                if raw.has(f) {
                    let f = VALUE_FLAGS.iter().find(|v| **v == f).copied().unwrap_or("log");
                    return Err(ArgsError::Misplaced(f, "--bundle"));
                }
            }
            let process = path("process").ok_or(ArgsError::Missing("process"))?;
            Mode::Exec { exec_id, process }
        }
    };
    Ok(Args {
        runtime,
        runtime_root: path("runtime-root"),
        id,
        dir,
        mode,
        tty: raw.has("tty"),
        stdin: raw.has("stdin"),
    })
}

fn container_mode(raw: &Raw, bundle: PathBuf, cwd: &Path) -> Result<Mode, ArgsError> {
    let max_size = number::<u64>(raw, "log-max-size")?;
    let max_files = number::<u32>(raw, "log-max-files")?;
    if max_files == Some(0) {
        return Err(ArgsError::Invalid(
            "log-max-files",
            "0".into(),
            "number of at least 1",
        ));
    }
    let log = match raw.get("log") {
        Some(p) => Some(LogOpts {
            path: cwd.join(p),
            max_size: max_size.unwrap_or(0),
            max_files: max_files.unwrap_or(1),
        }),
        None if max_size.is_some() => return Err(ArgsError::Misplaced("log-max-size", "--log")),
        None if max_files.is_some() => return Err(ArgsError::Misplaced("log-max-files", "--log")),
        None => None,
    };
    Ok(Mode::Container {
        bundle,
        log,
        unmount: raw.get("unmount").map(|p| cwd.join(p)),
    })
}

impl Args {
    /// `STATEDIR/NAME` for container mode, `STATEDIR/NAME-EXECID.EXT` in exec mode
    /// (`file("shim", "pid")` is `shim.pid` or `shim-EXECID.pid`).
    pub fn file(&self, stem: &str, ext: &str) -> PathBuf {
        match &self.mode {
            Mode::Container { .. } => self.dir.join(format!("{stem}.{ext}")),
            Mode::Exec { exec_id, .. } => self.dir.join(format!("{stem}-{exec_id}.{ext}")),
        }
    }

    pub fn is_exec(&self) -> bool {
        matches!(self.mode, Mode::Exec { .. })
    }

    /// Where the shim listens: `shim.sock`, or `exec-EXECID.sock`.
    pub fn socket(&self) -> PathBuf {
        match &self.mode {
            Mode::Container { .. } => self.dir.join("shim.sock"),
            Mode::Exec { .. } => self.file("exec", "sock"),
        }
    }

    /// The pid file the runtime writes: `init.pid`, or `exec-EXECID.pid`.
    pub fn process_pid_file(&self) -> PathBuf {
        match &self.mode {
            Mode::Container { .. } => self.dir.join("init.pid"),
            Mode::Exec { .. } => self.file("exec", "pid"),
        }
    }

    /// Where the end is recorded: `exit.json`, or `exit-EXECID.json`.
    pub fn exit_file(&self) -> PathBuf {
        self.file("exit", "json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, ArgsError> {
        let argv: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&argv, Path::new("/cwd"))
    }

    #[test]
    fn container_mode_with_everything() {
        let a = p(
            "--runtime /bin/rt --runtime-root /rr --id c1 --dir st --bundle=/b --tty --stdin \
                   --log l.json --log-max-size 4096 --log-max-files 3 --unmount /b/rootfs",
        )
        .unwrap();
        assert_eq!(a.runtime, PathBuf::from("/bin/rt"));
        assert_eq!(a.runtime_root, Some(PathBuf::from("/rr")));
        assert_eq!(a.id, "c1");
        assert_eq!(a.dir, PathBuf::from("/cwd/st"));
        assert!(a.tty && a.stdin);
        assert_eq!(
            a.mode,
            Mode::Container {
                bundle: "/b".into(),
                log: Some(LogOpts {
                    path: "/cwd/l.json".into(),
                    max_size: 4096,
                    max_files: 3
                }),
                unmount: Some("/b/rootfs".into()),
            }
        );
        assert_eq!(a.socket(), PathBuf::from("/cwd/st/shim.sock"));
        assert_eq!(a.file("shim", "pid"), PathBuf::from("/cwd/st/shim.pid"));
        assert_eq!(a.process_pid_file(), PathBuf::from("/cwd/st/init.pid"));
        assert_eq!(a.exit_file(), PathBuf::from("/cwd/st/exit.json"));
    }

    #[test]
    fn defaults_and_runtime_from_path() {
        let a = p("--runtime runc --id c --dir /d --bundle /b --log /l").unwrap();
        assert_eq!(a.runtime, PathBuf::from("runc"));
        assert!(!a.tty && !a.stdin && a.runtime_root.is_none());
        let Mode::Container { log: Some(l), .. } = a.mode else {
            panic!("{a:?}")
        };
        assert_eq!((l.max_size, l.max_files), (0, 1));
    }

    #[test]
    fn exec_mode_names_its_files() {
        let a = p("--runtime ./rt --id c --dir /d --exec e1 --process /d/p.json").unwrap();
        assert_eq!(a.runtime, PathBuf::from("/cwd/./rt"));
        assert_eq!(
            a.mode,
            Mode::Exec {
                exec_id: "e1".into(),
                process: "/d/p.json".into()
            }
        );
        assert_eq!(a.socket(), PathBuf::from("/d/exec-e1.sock"));
        assert_eq!(a.file("shim", "pid"), PathBuf::from("/d/shim-e1.pid"));
        assert_eq!(a.file("shim", "log"), PathBuf::from("/d/shim-e1.log"));
        assert_eq!(a.process_pid_file(), PathBuf::from("/d/exec-e1.pid"));
        assert_eq!(a.exit_file(), PathBuf::from("/d/exit-e1.json"));
    }

    #[test]
    fn errors() {
        let base = "--runtime r --id c --dir /d";
        let cases: &[(&str, ArgsError)] = &[
            ("--id c --dir /d --bundle /b", ArgsError::Missing("runtime")),
            ("--runtime r --dir /d --bundle /b", ArgsError::Missing("id")),
            ("--runtime r --id c --bundle /b", ArgsError::Missing("dir")),
            (base, ArgsError::Missing("bundle or --exec")),
            (
                "--runtime r --id c --dir /d --bundle /b --exec e --process p",
                ArgsError::BothModes,
            ),
            (
                "--runtime r --id c --dir /d --exec e",
                ArgsError::Missing("process"),
            ),
            (
                "--runtime r --id c --dir /d --bundle /b --bogus",
                ArgsError::Unknown("--bogus".into()),
            ),
            (
                "--runtime r --id c --dir /d --bundle",
                ArgsError::NoValue("--bundle".into()),
            ),
            (
                "--runtime r --id c --id d --dir /d --bundle /b",
                ArgsError::Twice("--id".into()),
            ),
            (
                "--runtime r --id c --dir /d --bundle /b extra",
                ArgsError::Positional("extra".into()),
            ),
            (
                "--runtime r --id c --dir /d --bundle /b --tty=1",
                ArgsError::Unknown("--tty=1".into()),
            ),
            (
                "--runtime r --id c --dir /d --bundle /b --log /l --log-max-size 10m",
                ArgsError::Invalid("log-max-size", "10m".into(), "number"),
            ),
            (
                "--runtime r --id c --dir /d --bundle /b --log /l --log-max-files 0",
                ArgsError::Invalid("log-max-files", "0".into(), "number of at least 1"),
            ),
            (
                "--runtime r --id c --dir /d --bundle /b --log-max-size 1",
                ArgsError::Misplaced("log-max-size", "--log"),
            ),
            (
                "--runtime r --id c --dir /d --exec e --process p --log /l",
                ArgsError::Misplaced("log", "--bundle"),
            ),
            (
                "--runtime r --id c --dir /d --exec e --process p --unmount /u",
                ArgsError::Misplaced("unmount", "--bundle"),
            ),
            (
                "--runtime r --id c --dir /d --bundle /b --process p",
                ArgsError::Misplaced("process", "--exec"),
            ),
            (
                "--runtime r --id a/b --dir /d --bundle /b",
                ArgsError::BadName("id", "a/b".into()),
            ),
            (
                "--runtime r --id c --dir /d --exec .. --process p",
                ArgsError::BadName("exec", "..".into()),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(p(line).unwrap_err(), *want, "{line}");
        }
        assert_eq!(ArgsError::Missing("runtime").to_string(), "--runtime is required");
    }
}

//! The OCI runtime (berth-runtime or runc) through runc's command line, and its error messages.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::args::Args;

pub struct Runtime {
    pub path: PathBuf,
    pub root: Option<PathBuf>,
    pub id: String,
}

/// The console socket flag pair, when the process has a terminal.
fn console(args: &mut Vec<OsString>, socket: Option<&Path>) {
    if let Some(s) = socket {
        args.push("--console-socket".into());
        args.push(s.into());
    }
}

impl Runtime {
    pub fn new(a: &Args) -> Runtime {
        Runtime {
            path: a.runtime.clone(),
            root: a.runtime_root.clone(),
            id: a.id.clone(),
        }
    }

    /// `[--root DIR] VERB...`
    pub fn argv(&self, verb: &[OsString]) -> Vec<OsString> {
        let mut v = Vec::with_capacity(verb.len() + 2);
        if let Some(r) = &self.root {
            v.push("--root".into());
            v.push(r.into());
        }
        v.extend(verb.iter().cloned());
        v
    }

    /// `create --bundle DIR --pid-file FILE [--console-socket SOCK] ID`
    pub fn create(&self, bundle: &Path, pid_file: &Path, socket: Option<&Path>) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["create".into(), "--bundle".into(), bundle.into()];
        v.extend(["--pid-file".into(), pid_file.into()]);
        console(&mut v, socket);
        v.push(self.id.clone().into());
        self.argv(&v)
    }

    /// `exec -d --pid-file FILE --process FILE [--tty --console-socket SOCK] ID`
    pub fn exec(&self, pid_file: &Path, process: &Path, socket: Option<&Path>) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["exec".into(), "-d".into(), "--pid-file".into(), pid_file.into()];
        v.extend(["--process".into(), process.into()]);
        if socket.is_some() {
            v.push("--tty".into());
        }
        console(&mut v, socket);
        v.push(self.id.clone().into());
        self.argv(&v)
    }

    /// `WORDS... ID [AFTER...]`: start, kill, delete.
    pub fn verb(&self, words: &[&str], after: &[&str]) -> Vec<OsString> {
        let mut v: Vec<OsString> = words.iter().map(OsString::from).collect();
        v.push(self.id.clone().into());
        v.extend(after.iter().map(OsString::from));
        self.argv(&v)
    }

    /// The runtime with `argv`, every signal at its default (the shim blocks and ignores some).
    pub fn command(&self, argv: &[OsString]) -> Command {
        let mut c = Command::new(&self.path);
        c.args(argv).current_dir("/");
        berth_sys::process::default_signals_on_exec(&mut c);
        c
    }

    /// Runs a verb with its output captured; its error message when it fails.
    pub fn run(&self, argv: &[OsString]) -> Result<(), String> {
        let out = self
            .command(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("run {}: {e}", self.path.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(error_message(&out.stderr)
                .unwrap_or_else(|| format!("{} {argv:?} failed: {}", self.path.display(), out.status)))
        }
    }
}

/// The runtime's error: its last non-empty stderr line, with the `msg` of a logrus line
/// (`time=".." level=error msg=".."`, what runc and berth-runtime print) taken out.
pub fn error_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(logrus_msg(line).unwrap_or_else(|| line.to_string()))
}

fn logrus_msg(line: &str) -> Option<String> {
    let at = if line.starts_with("msg=") {
        0
    } else {
        line.find(" msg=")? + 1
    };
    let value = &line[at + 4..];
    match value.strip_prefix('"') {
        Some(quoted) => unquote(quoted),
        None => Some(value.split_whitespace().next().unwrap_or("").to_string()),
    }
}

/// The rest of a Go/JSON-quoted string (after its opening quote), unescaped.
fn unquote(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(String::from_utf8_lossy(&out).into_owned()),
            '\\' => {
                let e = chars.next()?;
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    '"' | '\\' | '/' | '\'' => Some(e),
                    _ => None,
                };
                if let Some(c) = simple {
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => return None,
                };
                let hex: String = chars.by_ref().take(digits).collect();
                let v = u32::from_str_radix(&hex, 16).ok()?;
                if e == 'x' {
                    out.push(v as u8);
                } else {
                    let c = char::from_u32(v).unwrap_or('\u{fffd}');
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    None
}

/// Reads what `fd` has now (it must be non-blocking), keeping at most the last `keep` bytes.
pub fn read_available(fd: &mut std::fs::File, keep: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = fd.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > keep {
            out.drain(..out.len() - keep);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(root: Option<&str>) -> Runtime {
        Runtime {
            path: "/bin/rt".into(),
            root: root.map(PathBuf::from),
            id: "c1".into(),
        }
    }

    fn words(v: Vec<OsString>) -> String {
        v.iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn command_lines() {
        let r = rt(Some("/rr"));
        assert_eq!(
            words(r.create(Path::new("/b"), Path::new("/s/init.pid"), None)),
            "--root /rr create --bundle /b --pid-file /s/init.pid c1"
        );
        assert_eq!(
            words(rt(None).create(Path::new("/b"), Path::new("/p"), Some(Path::new("/s/c.sock")))),
            "create --bundle /b --pid-file /p --console-socket /s/c.sock c1"
        );
        assert_eq!(
            words(rt(None).exec(Path::new("/p"), Path::new("/f.json"), None)),
            "exec -d --pid-file /p --process /f.json c1"
        );
        assert_eq!(
            words(r.exec(Path::new("/p"), Path::new("/f.json"), Some(Path::new("/c")))),
            "--root /rr exec -d --pid-file /p --process /f.json --tty --console-socket /c c1"
        );
        assert_eq!(words(r.verb(&["start"], &[])), "--root /rr start c1");
        assert_eq!(
            words(r.verb(&["delete", "--force"], &[])),
            "--root /rr delete --force c1"
        );
        assert_eq!(
            words(r.verb(&["kill", "--all"], &["9"])),
            "--root /rr kill --all c1 9"
        );
    }

    #[test]
    fn error_messages() {
        let runc = b"time=\"2026-11-25T10:00:00Z\" level=error msg=\"runc create failed: unable to start container process: exec: \\\"nope\\\": executable file not found in $PATH\"\n";
        assert_eq!(
            error_message(runc).as_deref(),
            Some("runc create failed: unable to start container process: exec: \"nope\": executable file not found in $PATH")
        );
        assert_eq!(
            error_message(b"warning\nplain failure\n\n").as_deref(),
            Some("plain failure")
        );
        assert_eq!(error_message(b"msg=bare rest").as_deref(), Some("bare"));
        assert_eq!(
            error_message(b"level=error msg=\"a\\tb\\u00e9\\x41\"").as_deref(),
            Some("a\tbéA")
        );
        // An unterminated quote is kept as it is.
        assert_eq!(
            error_message(b"level=error msg=\"cut").as_deref(),
            Some("level=error msg=\"cut")
        );
        assert_eq!(error_message(b"  \n"), None);
    }
}

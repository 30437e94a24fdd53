//! Reading a container's `json-file` log (written by berth-shim, see `crates/shim/PROTOCOL.md`):
//! the rotated files oldest first, docker's `since`/`until`/`tail`/`timestamps` options, and
//! following the file as it grows and rotates until the container stops.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::time;

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    pub time: i128,
    pub line: Vec<u8>,
}

#[derive(Deserialize)]
struct Raw {
    log: String,
    stream: String,
    time: String,
}

/// Parses one `{"log","stream","time"}` line; anything else is skipped by the callers (a torn last
/// line after a crash, for one).
pub fn parse_line(b: &[u8]) -> Option<Entry> {
    let r: Raw = serde_json::from_slice(b).ok()?;
    Some(Entry {
        stream: if r.stream == "stderr" { 2 } else { 1 },
        time: time::parse_rfc3339_nanos(&r.time)?,
        line: r.log.into_bytes(),
    })
}

/// What `GET /containers/{id}/logs` asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<i128>,
    pub until: Option<i128>,
    pub tail: Option<usize>,
    pub timestamps: bool,
    pub follow: bool,
}

impl Options {
    fn keeps(&self, e: &Entry) -> bool {
        (if e.stream == 2 { self.stderr } else { self.stdout })
            && self.since.is_none_or(|s| e.time > s)
            && self.until.is_none_or(|u| e.time <= u)
    }
}

/// The bytes one entry becomes on the wire: docker's 8-byte frame header unless the container has
/// a terminal, and the timestamp first when asked.
pub fn render(e: &Entry, opts: &Options, tty: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(e.line.len() + 32);
    if opts.timestamps {
        payload.extend_from_slice(time::format_rfc3339_fixed(e.time).as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&e.line);
    if tty {
        return payload;
    }
    frame(e.stream, &payload)
}

/// docker's multiplexed stream frame: `[stream][0 0 0][length u32 BE][payload]`.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The log's files, oldest first: `FILE.N`, ..., `FILE.1`, `FILE`.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for i in 1.. {
        let p = PathBuf::from(format!("{}.{i}", path.display()));
        if !p.exists() {
            break;
        }
        rotated.push(p);
    }
    rotated.reverse();
    if path.exists() {
        rotated.push(path.to_path_buf());
    }
    rotated
}

/// Reads the whole log once, handing each kept entry to `out` (which returns false to stop).
/// Returns where reading of the live file ended (for following) and whether `out` stopped it.
fn read_all(path: &Path, opts: &Options, out: &mut dyn FnMut(&Entry) -> bool) -> (u64, u64, bool) {
    let mut tail: VecDeque<Entry> = VecDeque::new();
    let mut end = (0, 0);
    for f in files(path) {
        let Ok(file) = File::open(&f) else { continue };
        let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
        let mut r = BufReader::with_capacity(64 << 10, file);
        let mut buf = Vec::new();
        let mut pos = 0u64;
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) if buf.last() != Some(&b'\n') => {
                    let _ = n;
                    break; // a line still being written: the follower picks it up
                }
                Ok(n) => pos += n as u64,
            }
            let Some(e) = parse_line(&buf) else { continue };
            if !opts.keeps(&e) {
                continue;
            }
            match opts.tail {
                Some(0) => {}
                Some(n) => {
                    if tail.len() == n {
                        tail.pop_front();
                    }
                    tail.push_back(e);
                }
                None => {
                    if !out(&e) {
                        return (0, 0, true);
                    }
                }
            }
        }
        if f == path {
            end = (ino, pos);
        }
    }
    for e in &tail {
        if !out(e) {
            return (0, 0, true);
        }
    }
    (end.0, end.1, false)
}

/// Reads the log with `opts`, and with `follow` keeps reading as it grows (and across rotations)
/// while `running()` is true; ends after a last read once it is false. Blocking: run it on a
/// blocking thread. `out` returns false when the reader has gone.
pub fn read(path: &Path, opts: &Options, running: &dyn Fn() -> bool, out: &mut dyn FnMut(&Entry) -> bool) {
    let (mut ino, mut pos, stopped) = read_all(path, opts, out);
    if stopped || !opts.follow {
        return;
    }
    let mut buf = Vec::new();
    let mut last_round = false;
    loop {
        let alive = running();
        if let Ok(file) = File::open(path) {
            let meta = file.metadata().ok();
            let new_ino = meta.as_ref().map(|m| m.ino()).unwrap_or(0);
            if new_ino != ino || meta.as_ref().is_some_and(|m| m.len() < pos) {
                // Rotated (or truncated): the new file is read from its start.
                ino = new_ino;
                pos = 0;
            }
            let mut r = BufReader::new(file);
            if r.seek(SeekFrom::Start(pos)).is_ok() {
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(n) if n > 0 && buf.last() == Some(&b'\n') => pos += n as u64,
                        _ => break,
                    }
                    if let Some(e) = parse_line(&buf) {
                        if opts.until.is_some_and(|u| e.time > u) {
                            return;
                        }
                        if opts.keeps(&e) && !out(&e) {
                            return;
                        }
                    }
                }
            }
        }
        if last_round {
            return;
        }
        if !alive {
            last_round = true;
            continue;
        }
        if opts.until.is_some_and(|u| time::now_nanos() > u) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(stream: &str, t: &str, text: &str) -> String {
        format!(
            "{}\n",
            serde_json::json!({"log": text, "stream": stream, "time": t})
        )
    }

    fn collect(path: &Path, opts: &Options) -> Vec<String> {
        let mut got = Vec::new();
        read(path, opts, &|| false, &mut |e| {
            got.push(String::from_utf8_lossy(&e.line).into_owned());
            true
        });
        got
    }

    fn all() -> Options {
        Options {
            stdout: true,
            stderr: true,
            ..Default::default()
        }
    }

    #[test]
    fn reads_rotated_files_in_order_with_filters() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        std::fs::write(
            format!("{}.2", p.display()),
            line("stdout", "2026-01-01T00:00:01Z", "one\n"),
        )
        .unwrap();
        std::fs::write(
            format!("{}.1", p.display()),
            line("stderr", "2026-01-01T00:00:02.5Z", "two\n"),
        )
        .unwrap();
        let mut f = File::create(&p).unwrap();
        f.write_all(line("stdout", "2026-01-01T00:00:03Z", "three\n").as_bytes())
            .unwrap();
        f.write_all(b"not json\n").unwrap();
        f.write_all(line("stdout", "2026-01-01T00:00:04Z", "four\n").as_bytes())
            .unwrap();
        f.write_all(b"{\"log\":\"torn").unwrap();
        assert_eq!(collect(&p, &all()), ["one\n", "two\n", "three\n", "four\n"]);
        let only_err = Options {
            stdout: false,
            ..all()
        };
        assert_eq!(collect(&p, &only_err), ["two\n"]);
        let tail = Options {
            tail: Some(2),
            ..all()
        };
        assert_eq!(collect(&p, &tail), ["three\n", "four\n"]);
        let none = Options {
            tail: Some(0),
            ..all()
        };
        assert!(collect(&p, &none).is_empty());
        let window = Options {
            since: time::parse_rfc3339_nanos("2026-01-01T00:00:02Z"),
            until: time::parse_rfc3339_nanos("2026-01-01T00:00:03Z"),
            ..all()
        };
        assert_eq!(collect(&p, &window), ["two\n", "three\n"]);
    }

    #[test]
    fn renders_frames_and_timestamps() {
        let e = Entry {
            stream: 2,
            time: time::parse_rfc3339_nanos("2026-01-01T00:00:00.5Z").unwrap(),
            line: b"hi\n".to_vec(),
        };
        assert_eq!(
            render(&e, &all(), false),
            [&[2u8, 0, 0, 0, 0, 0, 0, 3][..], b"hi\n"].concat()
        );
        let ts = Options {
            timestamps: true,
            ..all()
        };
        assert_eq!(
            String::from_utf8(render(&e, &ts, true)).unwrap(),
            "2026-01-01T00:00:00.500000000Z hi\n"
        );
    }

    #[test]
    fn follows_growth_and_rotation_until_stopped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        std::fs::write(&p, line("stdout", "2026-01-01T00:00:01Z", "a\n")).unwrap();
        let p2 = p.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(120));
            let mut f = std::fs::OpenOptions::new().append(true).open(&p2).unwrap();
            f.write_all(line("stdout", "2026-01-01T00:00:02Z", "b\n").as_bytes())
                .unwrap();
            std::thread::sleep(Duration::from_millis(120));
            std::fs::rename(&p2, format!("{}.1", p2.display())).unwrap();
            std::fs::write(&p2, line("stdout", "2026-01-01T00:00:03Z", "c\n")).unwrap();
        });
        let start = std::time::Instant::now();
        let opts = Options {
            follow: true,
            ..all()
        };
        let mut got = Vec::new();
        read(
            &p,
            &opts,
            &|| start.elapsed() < Duration::from_millis(600),
            &mut |e| {
                got.push(String::from_utf8_lossy(&e.line).into_owned());
                true
            },
        );
        writer.join().unwrap();
        assert_eq!(got, ["a\n", "b\n", "c\n"]);
    }
}

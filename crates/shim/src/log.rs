//! The container's log in docker's `json-file` format (PROTOCOL.md, "The log"): the output is cut into
//! messages at `\n` (kept) or after 16 KiB without one, each message one JSON line; with a size limit
//! the file is rotated before a write would take it past the limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::args::LogOpts;
use crate::json;

/// A message is cut after this many bytes without a newline (docker's copier buffer).
pub const PARTIAL: usize = 16 * 1024;

/// Which output a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// The stream byte of docker's multiplexed frames.
    pub fn byte(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }
}

/// Cuts one stream into messages; holds at most one unfinished message (< 16 KiB).
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// Calls `emit` for every message `data` completes.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = PARTIAL - self.buf.len();
            let window = &data[..data.len().min(room)];
            let cut = match window.iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if window.len() == room => room,
                None => {
                    self.buf.extend_from_slice(window);
                    return;
                }
            };
            let (msg, rest) = data.split_at(cut);
            if self.buf.is_empty() {
                emit(msg);
            } else {
                self.buf.extend_from_slice(msg);
                emit(&self.buf);
                self.buf.clear();
            }
            data = rest;
        }
        if self.buf.capacity() > PARTIAL * 2 {
            self.buf.shrink_to(PARTIAL);
        }
    }

    /// The unfinished message, if any (at the end of the stream).
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
        self.buf.shrink_to(0);
    }
}

/// Appends `{"log":..,"stream":..,"time":..}\n` to `out`.
pub fn encode(out: &mut Vec<u8>, stream: Stream, msg: &[u8], time: &str) {
    out.extend_from_slice(b"{\"log\":");
    json::push_str(out, msg);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("open log {0}")]
    Open(PathBuf, #[source] io::Error),
    #[error("write log {0}")]
    Write(PathBuf, #[source] io::Error),
    #[error("rotate log {0}")]
    Rotate(PathBuf, #[source] io::Error),
}

/// The log file with its size and rotation rules.
struct Sink {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    file: File,
    size: u64,
    /// Encoded lines not yet written (one `write` per read of the container's output).
    pending: Vec<u8>,
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| LogError::Open(path.to_path_buf(), e))
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl Sink {
    fn add(&mut self, stream: Stream, msg: &[u8], time: &str) -> Result<(), LogError> {
        let start = self.pending.len();
        encode(&mut self.pending, stream, msg, time);
        let before = self.size + start as u64;
        if self.max_size > 0 && before + (self.pending.len() - start) as u64 > self.max_size && before > 0 {
            self.write_out(start)?;
            self.rotate()?;
        }
        Ok(())
    }

    /// Writes the first `n` pending bytes.
    fn write_out(&mut self, n: usize) -> Result<(), LogError> {
        let r = self.file.write_all(&self.pending[..n]);
        self.pending.drain(..n);
        r.map_err(|e| LogError::Write(self.path.clone(), e))?;
        self.size += n as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        let r = self.write_out(self.pending.len());
        if self.pending.capacity() > 64 * 1024 {
            self.pending.shrink_to(4096);
        }
        r
    }

    /// `FILE.(N-2)` -> `FILE.(N-1)`, ..., `FILE` -> `FILE.1`, a new `FILE`; with one file, truncation.
    fn rotate(&mut self) -> Result<(), LogError> {
        let err = |e| LogError::Rotate(self.path.clone(), e);
        if self.max_files <= 1 {
            self.file.set_len(0).map_err(err)?;
        } else {
            for n in (1..self.max_files - 1).rev() {
                match fs::rename(numbered(&self.path, n), numbered(&self.path, n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(e)),
                    _ => {}
                }
            }
            fs::rename(&self.path, numbered(&self.path, 1)).map_err(err)?;
            self.file = open_append(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// The json-file log of one container: stdout and stderr cut into messages, written to one file.
pub struct JsonFile {
    lines: [Lines; 2],
    sink: Sink,
}

impl JsonFile {
    pub fn open(o: &LogOpts) -> Result<JsonFile, LogError> {
        let file = open_append(&o.path)?;
        let size = file
            .metadata()
            .map_err(|e| LogError::Open(o.path.clone(), e))?
            .len();
        Ok(JsonFile {
            lines: Default::default(),
            sink: Sink {
                path: o.path.clone(),
                max_size: o.max_size,
                max_files: o.max_files.max(1),
                file,
                size,
                pending: Vec::new(),
            },
        })
    }

    /// Logs what the container wrote on `stream` (read at `time`).
    pub fn write(&mut self, stream: Stream, data: &[u8], time: &str) -> Result<(), LogError> {
        let mut first_err = None;
        let sink = &mut self.sink;
        self.lines[stream as usize].feed(data, &mut |m| {
            if let Err(e) = sink.add(stream, m, time) {
                first_err.get_or_insert(e);
            }
        });
        let flushed = self.sink.flush();
        first_err.map_or(flushed, Err)
    }

    /// Writes the unfinished message of `stream` (its end was reached).
    pub fn finish(&mut self, stream: Stream, time: &str) -> Result<(), LogError> {
        let mut first_err = None;
        let sink = &mut self.sink;
        self.lines[stream as usize].finish(&mut |m| {
            if let Err(e) = sink.add(stream, m, time) {
                first_err.get_or_insert(e);
            }
        });
        let flushed = self.sink.flush();
        first_err.map_or(flushed, Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut l = Lines::default();
        let mut out = Vec::new();
        for c in chunks {
            l.feed(c, &mut |m| out.push(m.to_vec()));
        }
        l.finish(&mut |m| out.push(m.to_vec()));
        out
    }

    #[test]
    fn lines_end_at_newline_across_reads() {
        assert_eq!(
            split(&[b"a\nbb", b"b\n\nc"]),
            vec![b"a\n".to_vec(), b"bbb\n".to_vec(), b"\n".to_vec(), b"c".to_vec()]
        );
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn sixteen_kib_without_newline_is_a_partial_message() {
        let long = vec![b'x'; PARTIAL * 2 + 10];
        let mut input = long.clone();
        input.push(b'\n');
        let out = split(&[&input[..100], &input[100..]]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].len(), PARTIAL);
        assert_eq!(out[1].len(), PARTIAL);
        assert_eq!(out[2], b"xxxxxxxxxx\n".to_vec());
        // Exactly 16 KiB with the newline is one message; one byte more needs two.
        let mut exact = vec![b'y'; PARTIAL - 1];
        exact.push(b'\n');
        assert_eq!(split(&[&exact]).len(), 1);
        let mut over = vec![b'y'; PARTIAL];
        over.push(b'\n');
        let out = split(&[&over]);
        assert_eq!((out.len(), out[1].as_slice()), (2, &b"\n"[..]));
    }

    #[test]
    fn encodes_docker_json_file_lines() {
        let mut v = Vec::new();
        encode(&mut v, Stream::Stderr, b"err \xff<\n", "2026-01-02T03:04:05.5Z");
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "{\"log\":\"err \\ufffd\\u003c\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-02T03:04:05.5Z\"}\n"
        );
    }

    fn opts(dir: &Path, max_size: u64, max_files: u32) -> LogOpts {
        LogOpts {
            path: dir.join("c.log"),
            max_size,
            max_files,
        }
    }

    fn read_lines(p: &Path) -> Vec<String> {
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    const T: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn writes_both_streams_and_partial_at_the_end() {
        let d = tempfile::tempdir().unwrap();
        let mut log = JsonFile::open(&opts(d.path(), 0, 1)).unwrap();
        log.write(Stream::Stdout, b"hello\nwor", T).unwrap();
        log.write(Stream::Stderr, b"err\n", T).unwrap();
        log.finish(Stream::Stdout, T).unwrap();
        let lines = read_lines(&d.path().join("c.log"));
        assert_eq!(
            lines,
            vec![
                format!("{{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"{T}\"}}"),
                format!("{{\"log\":\"err\\n\",\"stream\":\"stderr\",\"time\":\"{T}\"}}"),
                format!("{{\"log\":\"wor\",\"stream\":\"stdout\",\"time\":\"{T}\"}}"),
            ]
        );
    }

    /// One line of the test's output is this long in the file.
    fn entry_len(msg: &[u8]) -> u64 {
        let mut v = Vec::new();
        encode(&mut v, Stream::Stdout, msg, T);
        v.len() as u64
    }

    #[test]
    fn rotates_before_passing_the_size_and_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let one = entry_len(b"line 00\n");
        let max = one * 3 + 5;
        let mut log = JsonFile::open(&opts(d.path(), max, 3)).unwrap();
        for i in 0..20 {
            log.write(Stream::Stdout, format!("line {i:02}\n").as_bytes(), T)
                .unwrap();
        }
        let p = d.path().join("c.log");
        for f in [p.clone(), numbered(&p, 1), numbered(&p, 2)] {
            let len = fs::metadata(&f).unwrap().len();
            assert!(len <= max, "{} is {len} > {max}", f.display());
            assert_eq!(len, one * 3 - if f == p { one } else { 0 }, "{}", f.display());
        }
        assert!(!numbered(&p, 3).exists());
        // The newest lines are in FILE, the ones before in FILE.1, then FILE.2.
        assert!(read_lines(&p)[1].contains("line 19"));
        assert!(read_lines(&numbered(&p, 1))[2].contains("line 17"));
        assert!(read_lines(&numbered(&p, 2))[0].contains("line 12"));
    }

    #[test]
    fn one_write_of_many_lines_rotates_in_between() {
        let d = tempfile::tempdir().unwrap();
        let one = entry_len(b"line 00\n");
        let mut log = JsonFile::open(&opts(d.path(), one * 2, 2)).unwrap();
        let text: String = (0..5).map(|i| format!("line {i:02}\n")).collect();
        log.write(Stream::Stdout, text.as_bytes(), T).unwrap();
        let p = d.path().join("c.log");
        assert_eq!(read_lines(&p).len(), 1);
        assert_eq!(read_lines(&numbered(&p, 1)).len(), 2);
        assert!(read_lines(&p)[0].contains("line 04"));
    }

    #[test]
    fn max_files_one_truncates() {
        let d = tempfile::tempdir().unwrap();
        let one = entry_len(b"line 00\n");
        let mut log = JsonFile::open(&opts(d.path(), one * 2, 1)).unwrap();
        for i in 0..5 {
            log.write(Stream::Stdout, format!("line {i:02}\n").as_bytes(), T)
                .unwrap();
        }
        let p = d.path().join("c.log");
        assert_eq!(read_lines(&p), vec![read_lines(&p)[0].clone()]);
        assert!(read_lines(&p)[0].contains("line 04"));
        assert!(!numbered(&p, 1).exists());
    }

    #[test]
    fn an_entry_larger_than_the_limit_gets_a_file_of_its_own() {
        let d = tempfile::tempdir().unwrap();
        let mut log = JsonFile::open(&opts(d.path(), 10, 2)).unwrap();
        log.write(Stream::Stdout, b"a long line\nanother\n", T).unwrap();
        let p = d.path().join("c.log");
        assert!(read_lines(&p)[0].contains("another"));
        assert!(read_lines(&numbered(&p, 1))[0].contains("a long line"));
    }

    #[test]
    fn appends_to_an_existing_file_and_counts_its_size() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        fs::write(&p, "x".repeat(100)).unwrap();
        let mut log = JsonFile::open(&opts(d.path(), 120, 2)).unwrap();
        log.write(Stream::Stdout, b"hi\n", T).unwrap();
        assert_eq!(fs::metadata(numbered(&p, 1)).unwrap().len(), 100);
        assert!(read_lines(&p)[0].contains("hi\\n"));
    }
}

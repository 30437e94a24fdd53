//! Streams over a hijacked connection (attach, exec): docker's `hijackedIOStreamer`.
//!
//! ```text
//!   stdin ──(input thread: detach-key filter)──▶ conn ──▶ daemon
//!   stdout/stderr ◀──(this thread: raw with a tty, else 8-byte frames)── conn
//! ```
//!
//! The output side runs on the calling thread until the daemon closes the stream; the
//! input thread closes the writing half at EOF (the container sees its stdin end), or
//! shuts the whole connection down when the detach keys are typed.

use crate::http::{Hijacked, Stream};
use crate::tty::Raw;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// docker's default detach keys: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// moby/term's `ToBytes`: `ctrl-p,ctrl-q`, `a,ctrl-@`.
pub fn detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in spec.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-").filter(|c| c.len() == 1) {
            let c = c.as_bytes()[0];
            let code = match c {
                b'a'..=b'z' => c - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(format!("invalid ctrl key: {k}")),
            };
            out.push(code);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

/// Splits docker's multiplexed stream: 8-byte headers `[stream, 0, 0, 0, size (u32 BE)]`,
/// stdout (and stdin) frames to `out`, stderr frames to `err`.
pub fn demux(r: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<u64> {
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    let mut written = 0u64;
    loop {
        match read_full(r, &mut header)? {
            0 => return Ok(written),
            8 => {}
            _ => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected EOF")),
        }
        let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut system = Vec::new();
        let dst: &mut dyn Write = match header[0] {
            0 | 1 => &mut *out,
            2 => &mut *err,
            3 => &mut system,
            n => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("Unrecognized input header: {n}"),
                ))
            }
        };
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len());
            r.read_exact(&mut buf[..n])?;
            dst.write_all(&buf[..n])?;
            left -= n;
        }
        dst.flush()?;
        written += size as u64;
        if header[0] == 3 {
            return Err(io::Error::other(format!(
                "error from daemon in stream: {}",
                String::from_utf8_lossy(&system)
            )));
        }
    }
}

/// Reads until `buf` is full or EOF; the count read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Copies raw bytes, flushing each chunk (a terminal session).
pub fn copy_raw(r: &mut dyn Read, w: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        w.flush()?;
        total += n as u64;
    }
}

/// The detach-key filter of the input: bytes that begin the sequence are held back until
/// it is complete (detach) or broken (they are sent after all).
pub struct Escape {
    keys: Vec<u8>,
    pos: usize,
}

impl Escape {
    pub fn new(keys: Vec<u8>) -> Escape {
        Escape { keys, pos: 0 }
    }

    /// The bytes to send for `input`, and whether the sequence was completed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.pos] {
                self.pos += 1;
                if self.pos == self.keys.len() {
                    self.pos = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.pos]);
            self.pos = 0;
            if b == self.keys[0] {
                self.pos = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// How a stream ended.
#[derive(Debug, PartialEq)]
pub enum End {
    /// the daemon closed the output (the process ended), or there was none and stdin ended
    Closed,
    /// the detach keys were typed
    Detached,
}

/// What to connect.
pub struct Wiring<'a> {
    pub stdin: Option<Box<dyn Read + Send>>,
    pub stdout: Option<&'a mut dyn Write>,
    pub stderr: Option<&'a mut dyn Write>,
    pub tty: bool,
    /// the detach-key filter (with a tty, as docker)
    pub escape: Option<Escape>,
    /// the raw terminal, restored when either side finishes
    pub raw: Option<Arc<Raw>>,
}

fn input_thread(
    mut stdin: Box<dyn Read + Send>,
    mut conn: Stream,
    mut escape: Option<Escape>,
    raw: Option<Arc<Raw>>,
    detached: Arc<AtomicBool>,
    done: std::sync::mpsc::Sender<()>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (data, detach) = match escape.as_mut() {
            Some(e) => e.feed(&buf[..n]),
            None => (buf[..n].to_vec(), false),
        };
        if !data.is_empty() && conn.write_all(&data).is_err() {
            break;
        }
        if detach {
            if let Some(r) = &raw {
                r.restore();
            }
            detached.store(true, Ordering::SeqCst);
            conn.close();
            let _ = done.send(());
            return;
        }
    }
    if let Some(r) = &raw {
        r.restore();
    }
    let _ = conn.close_write();
    let _ = done.send(());
}

/// Runs the streams until the output ends (or, without output, until stdin ends), or
/// the detach keys are typed.
pub fn run(h: Hijacked, w: Wiring<'_>) -> io::Result<End> {
    let Hijacked {
        mut reader, writer, ..
    } = h;
    let detached = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let closer = writer.try_clone()?;
    match w.stdin {
        Some(stdin) => {
            let (raw, det) = (w.raw.clone(), detached.clone());
            let escape = w.escape;
            std::thread::spawn(move || input_thread(stdin, writer, escape, raw, det, done_tx));
        }
        None => {
            let _ = writer.close_write();
            drop(done_tx);
        }
    }
    let has_output = w.stdout.is_some() || w.stderr.is_some();
    let (mut sink, mut sink2) = (io::sink(), io::sink());
    let result = match (w.stdout, w.stderr) {
        _ if !has_output => {
            let _ = done_rx.recv();
            Ok(0)
        }
        (Some(out), _) if w.tty => {
            let r = copy_raw(&mut reader, out);
            if let Some(raw) = &w.raw {
                raw.restore();
            }
            r
        }
        (out, err) => demux(&mut reader, out.unwrap_or(&mut sink), err.unwrap_or(&mut sink2)),
    };
    closer.close();
    if detached.load(Ordering::SeqCst) {
        return Ok(End::Detached);
    }
    result.map(|_| End::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn demultiplexes_frames() {
        let mut input = frame(1, b"hello ");
        input.extend(frame(2, b"oops\n"));
        input.extend(frame(1, b"world\n"));
        input.extend(frame(1, b""));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let n = demux(&mut input.as_slice(), &mut out, &mut err).unwrap();
        assert_eq!(out, b"hello world\n");
        assert_eq!(err, b"oops\n");
        assert_eq!(n, 17);
        // a frame larger than the copy buffer
        let big = vec![b'x'; 100_000];
        let input = frame(1, &big);
        let mut out = Vec::new();
        demux(&mut input.as_slice(), &mut out, &mut Vec::new()).unwrap();
        assert_eq!(out.len(), 100_000);
    }

    #[test]
    fn demux_errors() {
        let input = frame(7, b"x");
        let e = demux(&mut input.as_slice(), &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "Unrecognized input header: 7");
        let input = frame(3, b"boom");
        let e = demux(&mut input.as_slice(), &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "error from daemon in stream: boom");
        let mut input = frame(1, b"abc");
        input.truncate(9);
        assert!(demux(&mut input.as_slice(), &mut Vec::new(), &mut Vec::new()).is_err());
        let input = vec![1u8, 0, 0];
        assert!(demux(&mut input.as_slice(), &mut Vec::new(), &mut Vec::new()).is_err());
    }

    #[test]
    fn hijacked_attach_against_a_server() {
        use crate::commands::testutil::Server;
        let frames: String = [frame(1, b"out\n"), frame(2, b"err\n")]
            .concat()
            .into_iter()
            .map(char::from)
            .collect();
        let server = Server::start(vec![
            format!("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n{frames}"),
            crate::commands::testutil::json_response(404, r#"{"message":"No such container: nope"}"#),
        ]);
        let client = crate::http::Client::new(server.endpoint());
        let h = client
            .hijack("POST", "/containers/c/attach?stderr=1&stdout=1&stream=1", None)
            .unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let end = run(
            h,
            Wiring {
                stdin: None,
                stdout: Some(&mut out),
                stderr: Some(&mut err),
                tty: false,
                escape: None,
                raw: None,
            },
        )
        .unwrap();
        assert_eq!(end, End::Closed);
        assert_eq!((out.as_slice(), err.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
        let e = client
            .hijack("POST", "/containers/nope/attach?stream=1", None)
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: nope"
        );
        let reqs = server.finish();
        assert_eq!(reqs[0].header("Upgrade"), Some("tcp"));
        assert_eq!(reqs[0].header("Connection"), Some("Upgrade"));
        assert_eq!(
            reqs[0].target,
            "/v1.44/containers/c/attach?stderr=1&stdout=1&stream=1"
        );
    }

    #[test]
    fn detach_key_specs() {
        assert_eq!(detach_keys("ctrl-p,ctrl-q").unwrap(), DEFAULT_DETACH_KEYS);
        assert_eq!(detach_keys("a,ctrl-@,ctrl-[").unwrap(), vec![b'a', 0, 27]);
        assert_eq!(detach_keys("ctrl-x").unwrap(), vec![24]);
        assert!(detach_keys("ctrl-1").is_err());
        assert!(detach_keys("abc").is_err());
    }

    #[test]
    fn escape_sequence() {
        let mut e = Escape::new(DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(e.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        // ctrl-p alone is held, then sent when the next key breaks the sequence
        assert_eq!(e.feed(&[16]), (vec![], false));
        assert_eq!(e.feed(b"x"), (vec![16, b'x'], false));
        // ctrl-p ctrl-p: the first is sent, the second may still start the sequence
        assert_eq!(e.feed(&[16, 16]), (vec![16], false));
        assert_eq!(e.feed(&[17]), (vec![], true));
        // bytes before the sequence in the same read are sent
        let mut e = Escape::new(DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(e.feed(&[b'a', 16, 17, b'b']), (vec![b'a'], true));
        let mut none = Escape::new(vec![]);
        assert_eq!(none.feed(&[16, 17]), (vec![16, 17], false));
    }
}

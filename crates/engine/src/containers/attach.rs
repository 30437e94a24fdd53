//! Attached clients: the bytes between a hijacked API connection and a shim's ATTACH connection.
//! Output comes from the shim in docker's multiplexed frames and goes to the client as frames, or
//! as raw bytes when the process has a terminal; the client's input goes to the shim as stdin
//! frames, watched for the detach keys (docker's escape proxy: a partial match is held back, a
//! full match detaches, a mismatch lets the held bytes through).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use super::ContainerService;
use crate::images::Error;

/// The default detach keys: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// What an attached client asked for.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// The process has a terminal: output is raw bytes, not frames.
    pub tty: bool,
    /// Close the process's stdin when this client's input ends.
    pub stdin_once: bool,
    pub detach_keys: Vec<u8>,
}

/// docker's `--detach-keys`: `ctrl-p,ctrl-q`, `a,b`, `ctrl-@`, `ctrl-[` ...
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, Error> {
    if s.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let mut out = Vec::new();
    for k in s.split(',') {
        let kb = k.as_bytes();
        if kb.len() == 1 {
            out.push(kb[0]);
            continue;
        }
        let code = k.strip_prefix("ctrl-").and_then(|c| {
            let c = c.as_bytes();
            if c.len() != 1 {
                return None;
            }
            match c[0] {
                b'a'..=b'z' => Some(c[0] - b'a' + 1),
                b'@' => Some(0),
                b'[' => Some(27),
                b'\\' => Some(28),
                b']' => Some(29),
                b'^' => Some(30),
                b'_' => Some(31),
                _ => None,
            }
        });
        match code {
            Some(c) => out.push(c),
            None => return Err(Error::Invalid(format!("Unknown character: '{k}'"))),
        }
    }
    Ok(out)
}

/// The escape proxy's state across reads.
#[derive(Debug, Default)]
pub struct Escape {
    keys: Vec<u8>,
    matched: usize,
}

/// What one read of input becomes.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Forward these bytes.
    Data(Vec<u8>),
    /// The detach sequence was typed; these bytes before it go first.
    Detach(Vec<u8>),
}

impl Escape {
    pub fn new(keys: Vec<u8>) -> Escape {
        Escape { keys, matched: 0 }
    }

    pub fn feed(&mut self, buf: &[u8]) -> Input {
        let mut out = Vec::with_capacity(buf.len());
        if self.keys.is_empty() {
            out.extend_from_slice(buf);
            return Input::Data(out);
        }
        for &b in buf {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Input::Detach(out);
                }
                continue;
            }
            // A mismatch: the held bytes were data after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return Input::Detach(out);
                }
            } else {
                out.push(b);
            }
        }
        Input::Data(out)
    }
}

/// A stdin frame for the shim: `[kind][0 0 0][len BE][payload]`.
fn stdin_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 8);
    f.extend_from_slice(&[kind, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// How an attachment ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The process ended (or the shim went away): all output was passed on.
    Exited,
    /// The client typed the detach keys.
    Detached,
    /// The client went away.
    Gone,
}

/// Moves bytes between `client` and the shim's attached connection until the output ends or the
/// client detaches.
/// `before_close` runs when the output has ended, before the client's stream is closed (an exec
/// records its exit code there, so the client finds it when it asks).
pub async fn pump<C, F>(client: C, shim: UnixStream, opts: &AttachOptions, before_close: F) -> Ended
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
    F: std::future::Future<Output = ()> + Send,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let output = async {
        let mut header = [0u8; 8];
        let mut buf = vec![0u8; 32 << 10];
        let mut before_close = Some(before_close);
        loop {
            if sr.read_exact(&mut header).await.is_err() {
                if let Some(f) = before_close.take() {
                    f.await;
                }
                let _ = cw.shutdown().await;
                return Ended::Exited;
            }
            let mut left = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if !opts.tty && cw.write_all(&header).await.is_err() {
                return Ended::Gone;
            }
            while left > 0 {
                let n = left.min(buf.len());
                if sr.read_exact(&mut buf[..n]).await.is_err() {
                    if let Some(f) = before_close.take() {
                        f.await;
                    }
                    let _ = cw.shutdown().await;
                    return Ended::Exited;
                }
                if cw.write_all(&buf[..n]).await.is_err() {
                    return Ended::Gone;
                }
                left -= n;
            }
            if cw.flush().await.is_err() {
                return Ended::Gone;
            }
        }
    };
    let input = async {
        if !opts.stdin {
            return std::future::pending::<Ended>().await;
        }
        let mut esc = Escape::new(opts.detach_keys.clone());
        let mut buf = vec![0u8; 32 << 10];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if opts.stdin_once {
                        let _ = sw.write_all(&stdin_frame(1, &[])).await;
                    }
                    return std::future::pending::<Ended>().await;
                }
                Ok(n) => n,
            };
            match esc.feed(&buf[..n]) {
                Input::Data(d) => {
                    if !d.is_empty() && sw.write_all(&stdin_frame(0, &d)).await.is_err() {
                        return std::future::pending::<Ended>().await;
                    }
                }
                Input::Detach(d) => {
                    if !d.is_empty() {
                        let _ = sw.write_all(&stdin_frame(0, &d)).await;
                    }
                    return Ended::Detached;
                }
            }
        }
    };
    tokio::select! {
        e = output => e,
        e = input => e,
    }
}

/// An attachment set up before the client's connection is handed over: connected to the running
/// container's shim, or registered to be connected when the container starts.
pub struct Attachment {
    e: Arc<super::Entry>,
    opts: AttachOptions,
    source: Source,
}

enum Source {
    Now(UnixStream),
    Later(tokio::sync::oneshot::Receiver<(super::shim::Conn, tokio::sync::oneshot::Sender<()>)>),
}

impl Attachment {
    /// Whether the process has a terminal (raw output) or not (frames).
    pub fn tty(&self) -> bool {
        self.opts.tty
    }
}

impl ContainerService {
    /// Sets up an attachment to container `input` (before the API answers, so that a start
    /// right after cannot run ahead of it).
    pub async fn attach_prepare(&self, input: &str, mut opts: AttachOptions) -> Result<Attachment, Error> {
        let e = self.get(input)?;
        let r = e.record();
        opts.tty = r.tty();
        opts.stdin_once = r
            .config
            .get("StdinOnce")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let open_stdin = r
            .config
            .get("OpenStdin")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        opts.stdin &= open_stdin;
        let source = if r.state.running {
            let s = self
                .conn(&e.id)
                .attach(opts.stdin, opts.stdout, opts.stderr)
                .await
                .map_err(|err| Error::Internal(err.to_string()))?;
            Source::Now(s)
        } else {
            let (tx, rx) = tokio::sync::oneshot::channel();
            e.pending.lock().expect("pending lock").push(tx);
            Source::Later(rx)
        };
        Ok(Attachment { e, opts, source })
    }

    /// Runs an attachment with the client's connection until the output ends or it detaches.
    pub async fn attach_run<C>(&self, a: Attachment, client: C) -> Ended
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let Attachment { e, opts, source } = a;
        let stream = match source {
            Source::Now(s) => s,
            Source::Later(rx) => {
                let Ok((conn, ack)) = rx.await else {
                    return Ended::Exited;
                };
                let s = conn.attach(opts.stdin, opts.stdout, opts.stderr).await;
                let _ = ack.send(());
                match s {
                    Ok(s) => s,
                    Err(err) => {
                        eprintln!("berthd: attach to {}: {err}", e.id);
                        return Ended::Exited;
                    }
                }
            }
        };
        self.emit("attach", &e.record(), &[]);
        let ended = pump(client, stream, &opts, async {}).await;
        if ended == Ended::Detached {
            self.emit("detach", &e.record(), &[]);
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-[").unwrap(), vec![0, 27]);
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }

    #[test]
    fn escape_proxy() {
        let mut e = Escape::new(vec![16, 17]);
        assert_eq!(e.feed(b"ab"), Input::Data(b"ab".to_vec()));
        // A partial match is held across reads, then released on a mismatch.
        assert_eq!(e.feed(&[b'x', 16]), Input::Data(b"x".to_vec()));
        assert_eq!(e.feed(b"y"), Input::Data(vec![16, b'y']));
        assert_eq!(e.feed(&[b'z', 16]), Input::Data(b"z".to_vec()));
        assert_eq!(e.feed(&[17, b'w']), Input::Detach(vec![]));
        let mut e = Escape::new(vec![16, 17]);
        assert_eq!(e.feed(&[b'q', 16, 16, 17]), Input::Detach(vec![b'q', 16]));
        let mut none = Escape::new(vec![]);
        assert_eq!(none.feed(&[16, 17]), Input::Data(vec![16, 17]));
    }

    #[tokio::test]
    async fn pump_passes_frames_and_stdin() {
        let (client, mut far) = tokio::io::duplex(1 << 16);
        let (shim_side, mut shim) = UnixStream::pair().unwrap();
        let opts = AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
            stdin_once: true,
            detach_keys: DEFAULT_DETACH_KEYS.to_vec(),
        };
        let task = tokio::spawn(async move { pump(client, shim_side, &opts, async {}).await });
        far.write_all(b"in").await.unwrap();
        let mut got = [0u8; 10];
        shim.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, &[0, 0, 0, 0, 0, 0, 0, 2, b'i', b'n']);
        shim.write_all(&[2, 0, 0, 0, 0, 0, 0, 3, b'e', b'r', b'r'])
            .await
            .unwrap();
        let mut out = [0u8; 11];
        far.read_exact(&mut out).await.unwrap();
        assert_eq!(&out[8..], b"err");
        far.shutdown().await.unwrap();
        let mut close = [0u8; 8];
        shim.read_exact(&mut close).await.unwrap();
        assert_eq!(close[0], 1);
        drop(shim);
        assert_eq!(task.await.unwrap(), Ended::Exited);
    }

    #[tokio::test]
    async fn pump_strips_frames_for_a_terminal_and_detaches() {
        let (client, mut far) = tokio::io::duplex(1 << 16);
        let (shim_side, mut shim) = UnixStream::pair().unwrap();
        let opts = AttachOptions {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
            stdin_once: false,
            detach_keys: DEFAULT_DETACH_KEYS.to_vec(),
        };
        let task = tokio::spawn(async move { pump(client, shim_side, &opts, async {}).await });
        shim.write_all(&[1, 0, 0, 0, 0, 0, 0, 2, b'$', b' '])
            .await
            .unwrap();
        let mut out = [0u8; 2];
        far.read_exact(&mut out).await.unwrap();
        assert_eq!(&out, b"$ ");
        far.write_all(&[16, 17]).await.unwrap();
        assert_eq!(task.await.unwrap(), Ended::Detached);
    }
}

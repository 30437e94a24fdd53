//! One client connection on the shim's socket: its request line, then (ATTACH) frames both ways, or a
//! pending WAIT; what is queued for it and not yet sent.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use crate::frame::{Decoder, Input};
use crate::request::{self, Request, RequestError, Streams};

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Its first line has not come yet.
    Request,
    Attached(Streams),
    /// WAIT: answered at the end.
    Waiting,
    /// Answered: closed once what is queued is sent.
    Closing,
}

pub struct Conn {
    pub sock: UnixStream,
    pub role: Role,
    /// The request line as it comes.
    line: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    decoder: Decoder,
    /// Hung up or failed: to be dropped.
    pub dead: bool,
}

/// What reading a connection gave.
pub enum Got {
    Nothing,
    /// The request, and the bytes that came after its line (the first frames of an ATTACH: the
    /// caller sets the role, then hands them to [`Conn::frames`]).
    Request(Result<Request, RequestError>, Vec<u8>),
}

impl Conn {
    pub fn new(sock: UnixStream) -> Conn {
        Conn {
            sock,
            role: Role::Request,
            line: Vec::new(),
            out: Vec::new(),
            sent: 0,
            decoder: Decoder::default(),
            dead: false,
        }
    }

    /// Bytes queued and not yet sent.
    pub fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }

    /// The buffer to append output to (frames, answers).
    pub fn queue(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    pub fn answer(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.push(b'\n');
    }

    /// Sends what it can; a connection whose peer is gone becomes dead.
    pub fn flush(&mut self) {
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        self.out.clear();
        self.sent = 0;
        if self.out.capacity() > 16 * 1024 {
            self.out.shrink_to(0);
        }
    }

    /// Reads what the client sent: the request line while there is none, stdin frames after ATTACH
    /// (passed to `stdin`), anything else is read and dropped. `buf` is scratch space.
    pub fn read(&mut self, buf: &mut [u8], stdin: &mut impl FnMut(Input<'_>)) -> Got {
        let n = match self.sock.read(buf) {
            Ok(0) => {
                self.dead = true;
                return Got::Nothing;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                return Got::Nothing
            }
            Err(_) => {
                self.dead = true;
                return Got::Nothing;
            }
        };
        let mut data = &buf[..n];
        if self.role == Role::Request {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) if self.line.len() + i <= request::MAX_LINE => {
                    self.line.extend_from_slice(&data[..i]);
                    let req = request::parse(&self.line);
                    self.line = Vec::new();
                    return Got::Request(req, data[i + 1..].to_vec());
                }
                None if self.line.len() + data.len() <= request::MAX_LINE => {
                    self.line.extend_from_slice(data);
                    return Got::Nothing;
                }
                _ => {
                    self.line = Vec::new();
                    return Got::Request(Err(RequestError::TooLong), Vec::new());
                }
            }
        }
        self.frames(&mut data, stdin);
        Got::Nothing
    }

    /// Decodes frames from `data` when the connection is attached with stdin; drops them otherwise.
    pub fn frames(&mut self, data: &mut &[u8], stdin: &mut impl FnMut(Input<'_>)) {
        if let Role::Attached(Streams { stdin: true, .. }) = self.role {
            while let Some(i) = self.decoder.next(data) {
                stdin(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    fn pair() -> (Conn, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Conn::new(a), b)
    }

    /// Collects what a client sent for stdin, as text.
    fn sink(out: &mut Vec<String>) -> impl FnMut(Input<'_>) + '_ {
        |i| {
            out.push(match i {
                Input::Stdin(b) => String::from_utf8_lossy(b).into_owned(),
                Input::Close => "<close>".into(),
            })
        }
    }

    fn read(c: &mut Conn, stdin: &mut Vec<String>) -> Option<(Result<Request, RequestError>, Vec<u8>)> {
        let mut buf = [0u8; 512];
        match c.read(&mut buf, &mut sink(stdin)) {
            Got::Nothing => None,
            Got::Request(r, rest) => Some((r, rest)),
        }
    }

    #[test]
    fn a_request_line_in_pieces_then_frames_in_the_same_write() {
        let (mut c, mut peer) = pair();
        let mut stdin = Vec::new();
        peer.write_all(b"ATTACH stdin ").unwrap();
        assert!(read(&mut c, &mut stdin).is_none());
        let mut rest = b"stdout\n".to_vec();
        frame::encode(&mut rest, 0, b"hi");
        frame::encode(&mut rest, 1, b"");
        peer.write_all(&rest).unwrap();
        let (req, after) = read(&mut c, &mut stdin).expect("the request");
        let Ok(Request::Attach(s)) = req else {
            panic!("{req:?}")
        };
        assert!(s.stdin && s.stdout && !s.stderr);
        c.role = Role::Attached(s);
        c.frames(&mut after.as_slice(), &mut sink(&mut stdin));
        assert_eq!(stdin, ["hi", "<close>"]);
    }

    #[test]
    fn answers_are_queued_and_sent() {
        let (mut c, peer) = pair();
        c.answer("OK 42");
        assert_eq!(c.unsent(), 6);
        c.flush();
        assert_eq!(c.unsent(), 0);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(peer), &mut line).unwrap();
        assert_eq!(line, "OK 42\n");
    }

    #[test]
    fn long_lines_and_hangups() {
        let (mut c, mut peer) = pair();
        let mut stdin = Vec::new();
        peer.write_all(&[b'x'; request::MAX_LINE + 1]).unwrap();
        let (req, _) = read(&mut c, &mut stdin).expect("refused");
        assert_eq!(req, Err(RequestError::TooLong));
        drop(peer);
        assert!(read(&mut c, &mut stdin).is_none());
        assert!(c.dead);
        // Frames from a client attached without stdin are dropped.
        let (mut c, _peer) = pair();
        c.role = Role::Attached(Streams {
            stdout: true,
            ..Default::default()
        });
        let mut f = Vec::new();
        frame::encode(&mut f, 0, b"dropped");
        c.frames(&mut f.as_slice(), &mut |_| panic!("no stdin"));
    }
}

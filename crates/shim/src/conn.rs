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

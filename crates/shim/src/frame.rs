//! Frames on an ATTACH connection (PROTOCOL.md): an 8-byte header `[kind u8][0 0 0][length u32 BE]`
//! and the payload. Output frames carry stream 1 (stdout) or 2 (stderr); input frames kind 0 (stdin
//! bytes) or kind 1 (close the container's stdin).

pub const HEADER: usize = 8;

/// Appends one output frame for `stream` with `payload` to `out`.
pub fn encode(out: &mut Vec<u8>, stream: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload[..len as usize]);
}

/// What a client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Bytes for the container's stdin (part of a frame's payload: a large frame comes in pieces).
    Stdin(&'a [u8]),
    /// Kind 1: close the container's stdin.
    Close,
}

/// Decodes client frames incrementally without holding payloads: a payload is handed on in the pieces
/// in which it arrives.
#[derive(Debug, Default)]
pub struct Decoder {
    header: [u8; HEADER],
    have: usize,
    /// Payload bytes of the current frame still to come, and its kind.
    left: u32,
    kind: u8,
}

impl Decoder {
    /// The next input from `data` (advanced past what was consumed); `None` once `data` is used up.
    /// Frames of unknown kinds are skipped.
    pub fn next<'a>(&mut self, data: &mut &'a [u8]) -> Option<Input<'a>> {
        loop {
            if self.left > 0 {
                if data.is_empty() {
                    return None;
                }
                let n = data.len().min(self.left as usize);
                let (piece, rest) = data.split_at(n);
                *data = rest;
                self.left -= n as u32;
                if self.kind == 0 {
                    return Some(Input::Stdin(piece));
                }
                continue;
            }
            let n = (HEADER - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            *data = &data[n..];
            if self.have < HEADER {
                return None;
            }
            self.have = 0;
            self.kind = self.header[0];
            self.left = u32::from_be_bytes([self.header[4], self.header[5], self.header[6], self.header[7]]);
            if self.kind == 1 {
                // Kind 1 has an empty payload; one that has bytes anyway has them skipped.
                self.kind = 2;
                return Some(Input::Close);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&mut v, kind, payload);
        v
    }

    fn decode_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            let mut data = *c;
            while let Some(i) = d.next(&mut data) {
                out.push(match i {
                    Input::Stdin(b) => format!("in:{}", String::from_utf8_lossy(b)),
                    Input::Close => "close".to_string(),
                });
            }
            assert!(data.is_empty());
        }
        out
    }

    #[test]
    fn encodes_dockers_header() {
        assert_eq!(frame(2, b"err"), b"\x02\0\0\0\0\0\0\x03err".to_vec());
        assert_eq!(frame(1, b""), vec![1, 0, 0, 0, 0, 0, 0, 0]);
        let big = vec![0u8; 70_000];
        assert_eq!(&frame(1, &big)[..8], &[1, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn decodes_frames_whole_and_in_pieces() {
        let mut all = frame(0, b"hello");
        all.extend(frame(1, b""));
        all.extend(frame(0, b"x"));
        assert_eq!(decode_all(&[&all]), ["in:hello", "close", "in:x"]);
        // One byte at a time: the payload comes out byte by byte, nothing is lost.
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(
            decode_all(&bytes),
            ["in:h", "in:e", "in:l", "in:l", "in:o", "close", "in:x"]
        );
    }

    #[test]
    fn unknown_kinds_and_close_payloads_are_skipped() {
        let mut all = frame(7, b"ignored");
        all.extend(frame(1, b"zz"));
        all.extend(frame(0, b"ok"));
        assert_eq!(decode_all(&[&all]), ["close", "in:ok"]);
        assert!(decode_all(&[&frame(0, b"")]).is_empty());
    }
}

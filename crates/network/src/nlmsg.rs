//! The netlink wire format, pure: a request built as bytes (`nlmsghdr`, a fixed family header, then
//! `rtattr`s, nested where needed), and answers split back into messages and attributes. Everything
//! is in host byte order and 4-byte aligned, as the kernel lays it out (`include/uapi/linux/netlink.h`).
//! No I/O here: `link.rs` sends and receives, `rtnl.rs` knows which attributes a request carries.

use std::io;

pub const HEADER_LEN: usize = 16;
const ATTR_HEADER_LEN: usize = 4;

// Message types every netlink family shares.
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

// Header flags.
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// On an `NLMSG_ERROR`: only the request's header is echoed (`NETLINK_CAP_ACK`).
const NLM_F_CAPPED: u16 = 0x100;
/// On an `NLMSG_ERROR`: extended-ack attributes follow the echoed request (`NETLINK_EXT_ACK`).
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

/// Set on an attribute whose payload is more attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | 0x4000);

/// Rounds up to netlink's 4-byte alignment.
pub const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// A request being built: the header, a family header, attributes. Lengths (of the message and of
/// every open nest) are filled in when known.
#[derive(Debug, Clone)]
pub struct Message {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Message {
    /// A message of type `ty` with `flags` (`NLM_F_REQUEST` is added) and the family header `family`
    /// (an `ifinfomsg`, `ifaddrmsg` or `rtmsg` as bytes).
    pub fn new(ty: u16, flags: u16, family: &[u8]) -> Message {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence, set by `finish`
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: 0, the kernel fills it in
        let mut m = Message {
            buf,
            nests: Vec::new(),
        };
        m.raw(family);
        m
    }

    /// Appends bytes as they are, padded to alignment.
    pub fn raw(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = u16::try_from(ATTR_HEADER_LEN + data.len()).expect("netlink attribute over 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.raw(data)
    }

    pub fn attr_u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.attr(ty, &[v])
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A string attribute, NUL-terminated as iproute2 sends names.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(ty, &data)
    }

    /// Opens a nested attribute; what follows, up to the matching `end`, is its payload.
    pub fn begin(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end(&mut self) -> &mut Self {
        let start = self.nests.pop().expect("netlink nest closed twice");
        let len = u16::try_from(self.buf.len() - start).expect("netlink nest over 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The bytes to send, with the length and sequence number filled in.
    pub fn finish(&self, seq: u32) -> Vec<u8> {
        assert!(self.nests.is_empty(), "netlink nest left open");
        let mut out = self.buf.clone();
        let len = u32::try_from(out.len()).expect("netlink message over 4 GiB");
        out[0..4].copy_from_slice(&len.to_ne_bytes());
        out[8..12].copy_from_slice(&seq.to_ne_bytes());
        out
    }
}

/// The header of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed netlink answer: {what}"),
    )
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Splits one datagram into its messages: header and payload (what follows the 16-byte header).
pub fn messages(mut buf: &[u8]) -> io::Result<Vec<(Header, &[u8])>> {
    let mut out = Vec::new();
    while buf.len() >= HEADER_LEN {
        let len = u32_at(buf, 0) as usize;
        if len < HEADER_LEN || len > buf.len() {
            return Err(invalid("message length out of bounds"));
        }
        let header = Header {
            ty: u16_at(buf, 4),
            flags: u16_at(buf, 6),
            seq: u32_at(buf, 8),
        };
        out.push((header, &buf[HEADER_LEN..len]));
        buf = &buf[align(len).min(buf.len())..];
    }
    Ok(out)
}

/// The errno of an `NLMSG_ERROR` payload: 0 for an acknowledgement, else a positive errno.
pub fn error_code(payload: &[u8]) -> io::Result<i32> {
    if payload.len() < 4 {
        return Err(invalid("short error message"));
    }
    let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
    Ok(code.checked_neg().unwrap_or(i32::MAX).max(0))
}

/// The kernel's own words in an `NLMSG_ERROR` (the extended ack's `NLMSGERR_ATTR_MSG`, such as
/// "mtu less than device minimum"), when it gave some.
pub fn error_detail(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        HEADER_LEN
    } else {
        u32_at(payload.get(4..8)?, 0) as usize
    };
    let tlvs = payload.get(4 + align(echoed)..)?;
    let (_, msg) = attrs(tlvs)
        .ok()?
        .into_iter()
        .find(|(ty, _)| *ty == NLMSGERR_ATTR_MSG)?;
    Some(attr_string(msg)).filter(|m| !m.is_empty())
}

/// The attributes in `buf`, as (type without the nested/byte-order bits, payload).
pub fn attrs(mut buf: &[u8]) -> io::Result<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while buf.len() >= ATTR_HEADER_LEN {
        let len = usize::from(u16_at(buf, 0));
        if len < ATTR_HEADER_LEN || len > buf.len() {
            return Err(invalid("attribute length out of bounds"));
        }
        out.push((u16_at(buf, 2) & NLA_TYPE_MASK, &buf[ATTR_HEADER_LEN..len]));
        buf = &buf[align(len).min(buf.len())..];
    }
    Ok(out)
}

/// A string attribute's text, without its terminating NUL.
pub fn attr_string(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

pub fn attr_u32(data: &[u8]) -> io::Result<u32> {
    if data.len() < 4 {
        return Err(invalid("short u32 attribute"));
    }
    Ok(u32_at(data, 0))
}

/// How a request ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged (or the dump is complete), with the answers that came before.
    Answers(Vec<Vec<u8>>),
    /// The kernel answered with this errno, and maybe an explanation.
    Refused(i32, Option<String>),
    /// The dump was interrupted by a change (`NLM_F_DUMP_INTR`): ask again.
    Interrupted,
}

/// The answers to one request, fed datagram by datagram until it has ended. An acknowledged
/// request ends with `NLMSG_ERROR` (0 or an errno); a dump ends with `NLMSG_DONE`. Messages of
/// another sequence number (left over from an earlier request) are skipped.
#[derive(Debug)]
pub struct Reply {
    seq: u32,
    /// For a dump: the message type of its entries.
    dump: Option<u16>,
    answers: Vec<Vec<u8>>,
    interrupted: bool,
}

impl Reply {
    pub fn ack(seq: u32) -> Reply {
        Reply {
            seq,
            dump: None,
            answers: Vec::new(),
            interrupted: false,
        }
    }

    pub fn dump(seq: u32, entries: u16) -> Reply {
        Reply {
            seq,
            dump: Some(entries),
            answers: Vec::new(),
            interrupted: false,
        }
    }

    /// Takes one datagram; Some once the request has ended.
    pub fn feed(&mut self, datagram: &[u8]) -> io::Result<Option<Outcome>> {
        for (hdr, payload) in messages(datagram)? {
            if hdr.seq != self.seq {
                continue;
            }
            self.interrupted |= hdr.flags & NLM_F_DUMP_INTR != 0;
            match (hdr.ty, self.dump) {
                (NLMSG_ERROR, _) => {
                    return Ok(Some(match error_code(payload)? {
                        0 => Outcome::Answers(std::mem::take(&mut self.answers)),
                        errno => Outcome::Refused(errno, error_detail(hdr.flags, payload)),
                    }))
                }
                (NLMSG_OVERRUN, _) => return Err(io::Error::other("netlink overrun: answers were lost")),
                (NLMSG_DONE, Some(_)) if self.interrupted => return Ok(Some(Outcome::Interrupted)),
                (NLMSG_DONE, Some(_)) => {
                    return Ok(Some(Outcome::Answers(std::mem::take(&mut self.answers))))
                }
                (ty, Some(want)) if ty != want => {}
                _ => self.answers.push(payload.to_vec()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_and_padding_are_measured() {
        let mut m = Message::new(16, NLM_F_ACK, &[1, 2, 3]);
        m.begin(18).attr_str(1, "ab").end().attr_u8(4, 9);
        let b = m.finish(7);
        // header 16 + family 3 padded to 4 + nest header 4 + "ab\0" attr 4+3 padded 8 + u8 attr 8
        assert_eq!(b.len(), 16 + 4 + 4 + 8 + 8);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(u16_at(&b, 6), NLM_F_ACK | NLM_F_REQUEST);
        assert_eq!(u32_at(&b, 8), 7);
        assert_eq!(&b[16..20], &[1, 2, 3, 0]);
        assert_eq!(
            u16_at(&b, 20),
            12,
            "nest length covers its header and its one attribute"
        );
        assert_eq!(u16_at(&b, 22), 18 | NLA_F_NESTED);
        let outer = attrs(&b[20..]).unwrap();
        assert_eq!(outer.len(), 2);
        assert_eq!(outer[0].0, 18, "the nested bit is masked off");
        let inner = attrs(outer[0].1).unwrap();
        assert_eq!(inner, vec![(1, &b"ab\0"[..])]);
        assert_eq!(attr_string(inner[0].1), "ab");
        assert_eq!(outer[1], (4, &[9u8][..]));
    }

    #[test]
    fn datagrams_split_into_messages() {
        let a = Message::new(16, 0, &[0; 16]).finish(1);
        let mut c = Message::new(NLMSG_DONE, 0, &[0; 4]);
        c.attr_u32(1, 5);
        let c = c.finish(2);
        let both = [a.clone(), c.clone()].concat();
        let msgs = messages(&both).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            msgs[0].0,
            Header {
                ty: 16,
                flags: NLM_F_REQUEST,
                seq: 1
            }
        );
        assert_eq!(msgs[0].1.len(), 16);
        assert_eq!(msgs[1].0.ty, NLMSG_DONE);
        assert_eq!(msgs[1].1, &c[16..]);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let a = Message::new(16, 0, &[0; 16]).finish(1);
        let err = messages(&a[..20]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let bad_attr = [8u8, 0, 1, 0, 1, 2];
        assert!(attrs(&bad_attr).is_err());
        assert!(
            attrs(&[2u8, 0, 1, 0]).is_err(),
            "an attribute shorter than its header"
        );
        assert!(error_code(&[0, 0]).is_err());
        assert!(attr_u32(&[1, 2]).is_err());
    }

    /// An `NLMSG_ERROR` message: the errno, negated, then the header of the request it answers.
    fn error_message(seq: u32, errno: i32) -> Vec<u8> {
        let mut echoed = Message::new(16, NLM_F_ACK, &[0; 16]).finish(seq)[..HEADER_LEN].to_vec();
        echoed.splice(0..0, (-errno).to_ne_bytes());
        Message::new(NLMSG_ERROR, 0, &echoed).finish(seq)
    }

    #[test]
    fn an_ack_ends_a_request_and_an_errno_refuses_it() {
        let answer = Message::new(16, 0, &[7; 16]).finish(5);
        let mut r = Reply::ack(5);
        let stale = error_message(4, 0);
        assert_eq!(r.feed(&stale).unwrap(), None, "another request's ack is skipped");
        assert_eq!(r.feed(&answer).unwrap(), None);
        let got = r.feed(&error_message(5, 0)).unwrap();
        assert_eq!(got, Some(Outcome::Answers(vec![answer[16..].to_vec()])));
        let mut r = Reply::ack(6);
        assert_eq!(
            r.feed(&error_message(6, 17)).unwrap(),
            Some(Outcome::Refused(17, None))
        );
    }

    #[test]
    fn a_dump_keeps_its_entries_and_ends_at_done() {
        let entry = Message::new(16, 0, &[1; 16]).finish(9);
        let other = Message::new(20, 0, &[2; 8]).finish(9);
        let done = Message::new(NLMSG_DONE, 0, &[0; 4]).finish(9);
        let mut r = Reply::dump(9, 16);
        assert_eq!(r.feed(&[entry.clone(), other].concat()).unwrap(), None);
        assert_eq!(
            r.feed(&done).unwrap(),
            Some(Outcome::Answers(vec![entry[16..].to_vec()]))
        );
        let mut r = Reply::dump(9, 16);
        let mut intr = entry.clone();
        intr[6..8].copy_from_slice(&NLM_F_DUMP_INTR.to_ne_bytes());
        assert_eq!(
            r.feed(&[intr, done].concat()).unwrap(),
            Some(Outcome::Interrupted)
        );
        let mut r = Reply::dump(9, 16);
        assert_eq!(
            r.feed(&error_message(9, 95)).unwrap(),
            Some(Outcome::Refused(95, None))
        );
        let overrun = Message::new(NLMSG_OVERRUN, 0, &[]).finish(9);
        assert!(Reply::dump(9, 16).feed(&overrun).is_err());
    }

    #[test]
    fn extended_acks_explain_refusals() {
        // A capped error (only the request's header echoed) with an NLMSGERR_ATTR_MSG attribute.
        let mut echoed = Message::new(16, NLM_F_ACK, &[0; 16]).finish(3)[..HEADER_LEN].to_vec();
        echoed.splice(0..0, (-22i32).to_ne_bytes());
        let mut m = Message::new(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, &echoed);
        m.attr_str(NLMSGERR_ATTR_MSG, "mtu less than device minimum");
        let got = Reply::ack(3).feed(&m.finish(3)).unwrap();
        assert_eq!(
            got,
            Some(Outcome::Refused(22, Some("mtu less than device minimum".into())))
        );
        // Uncapped: the whole request is echoed before the attributes.
        let request = Message::new(16, NLM_F_ACK, &[0; 16]).finish(4);
        let mut payload = (-22i32).to_ne_bytes().to_vec();
        payload.extend_from_slice(&request);
        let mut m = Message::new(NLMSG_ERROR, NLM_F_ACK_TLVS, &payload);
        m.attr_str(NLMSGERR_ATTR_MSG, "why");
        let b = m.finish(4);
        assert_eq!(
            error_detail(NLM_F_ACK_TLVS, &b[HEADER_LEN..]).as_deref(),
            Some("why")
        );
        assert_eq!(error_detail(0, &b[HEADER_LEN..]), None, "no TLV flag, no detail");
        assert_eq!(error_detail(NLM_F_ACK_TLVS, &b[HEADER_LEN..HEADER_LEN + 6]), None);
    }

    #[test]
    fn error_codes_are_negated_errnos() {
        assert_eq!(error_code(&(-17i32).to_ne_bytes()).unwrap(), 17);
        assert_eq!(error_code(&0i32.to_ne_bytes()).unwrap(), 0);
        assert_eq!(error_code(&i32::MIN.to_ne_bytes()).unwrap(), i32::MAX);
    }
}

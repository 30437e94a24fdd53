//! The embedded DNS server's messages (RFC 1035), pure: a query's header and single question
//! read from the wire, the replies berth gives itself (A, AAAA, PTR, "no data" and error codes)
//! written as docker's embedded resolver writes them (not authoritative, recursion available,
//! TTL 600), and the nameservers of a `resolv.conf`. The socket side is `server.rs`.
//!
//! Written by hand rather than with `hickory-proto`: berth reads one question and writes three
//! record types, and relays upstream replies byte for byte, so a full DNS library (and its
//! dependencies) would buy nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub mod server;

pub use server::{Options, Resolver, Server, ServerHandle};

#[cfg(test)]
mod tests;

/// The time to live of berth's own answers, as docker's (`respTTL`).
pub const TTL: u32 = 600;
/// The size of a UDP reply without EDNS0 (RFC 1035 4.2.1).
pub const UDP_SIZE: usize = 512;

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;

pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;

const HEADER: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const FLAG_CD: u16 = 0x0010;
const OPCODE_MASK: u16 = 0x7800;
/// A name is at most 255 bytes on the wire (RFC 1035 2.3.4), a label at most 63.
const MAX_NAME: usize = 255;
const MAX_LABEL: usize = 63;
/// docker and glibc use at most three nameservers.
const MAX_NAMESERVERS: usize = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    #[error("dns message of {0} bytes is shorter than a header")]
    Short(usize),
    #[error("dns message is a response, not a query")]
    Response,
    #[error("dns opcode {0} is not supported")]
    Opcode(u8),
    #[error("dns query has {0} questions, not one")]
    Questions(u16),
    #[error("dns message ends inside its question")]
    Truncated,
    #[error("dns name has a label of unknown type {0:#04x}")]
    LabelType(u8),
    #[error("dns name is longer than 255 bytes")]
    NameTooLong,
    #[error("dns name has a compression pointer to offset {0} that does not point backwards")]
    Pointer(usize),
}

impl DnsError {
    /// The response code a malformed query gets, or None when no reply may be sent: no header to
    /// answer to, or the message is itself a response (answering it could start a loop).
    pub fn rcode(&self) -> Option<u8> {
        match self {
            DnsError::Short(_) | DnsError::Response => None,
            DnsError::Opcode(_) => Some(RCODE_NOTIMP),
            _ => Some(RCODE_FORMERR),
        }
    }
}

/// A query's header and question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// The name asked for: ASCII lowercased, labels joined by dots, no trailing dot; a byte that
    /// is not printable ASCII, or a dot inside a label, is written `\DDD` (as dig does).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// Recursion desired.
    pub rd: bool,
    /// The UDP payload size the client's EDNS0 OPT record announces, if it sent one.
    pub udp_size: Option<u16>,
    /// The question's name as sent (case kept, compression expanded), echoed in replies: some
    /// clients check that the case they randomised comes back (DNS 0x20).
    pub wire_name: Vec<u8>,
}

/// What berth answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A and AAAA records, one per address (its family gives the type).
    Addrs(Vec<IpAddr>),
    /// A PTR record naming this host (written as an absolute name).
    Name(String),
    /// The name is known but has no record of the type asked for: NOERROR without answers.
    NoData,
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

/// Reads the name at `at`: its uncompressed wire form and the offset just after it in `msg`.
fn read_name(msg: &[u8], at: usize) -> Result<(Vec<u8>, usize), DnsError> {
    let mut wire = Vec::new();
    let mut pos = at;
    // Where the name ends in the message: after its first pointer, or after its last label.
    let mut end = None;
    // Every pointer must go strictly backwards from the previous one, so the walk ends.
    let mut limit = at;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                wire.push(0);
                return Ok((wire, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + len as usize)
                    .ok_or(DnsError::Truncated)?;
                if wire.len() + 1 + label.len() + 1 > MAX_NAME {
                    return Err(DnsError::NameTooLong);
                }
                wire.push(len);
                wire.extend_from_slice(label);
                pos += 1 + len as usize;
            }
            0xc0 => {
                let target = (be16(msg, pos).ok_or(DnsError::Truncated)? & 0x3fff) as usize;
                if target >= limit {
                    return Err(DnsError::Pointer(target));
                }
                end.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return Err(DnsError::LabelType(len)),
        }
    }
}

/// The presentation form of a wire name, lowercased (see `Query::name`).
fn name_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        if !out.is_empty() {
            out.push('.');
        }
        for &b in &wire[pos + 1..pos + 1 + len as usize] {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                out.push(b.to_ascii_lowercase() as char);
            } else {
                out.push_str(&format!("\\{b:03}"));
            }
        }
        pos += 1 + len as usize;
    }
    out
}

/// Skips one resource record at `at` and returns (type, class, offset after it).
fn skip_record(msg: &[u8], at: usize) -> Result<(u16, u16, usize), DnsError> {
    let (_, pos) = read_name(msg, at)?;
    let rtype = be16(msg, pos).ok_or(DnsError::Truncated)?;
    let class = be16(msg, pos + 2).ok_or(DnsError::Truncated)?;
    let rdlen = be16(msg, pos + 8).ok_or(DnsError::Truncated)? as usize;
    let end = pos + 10 + rdlen;
    if end > msg.len() {
        return Err(DnsError::Truncated);
    }
    Ok((rtype, class, end))
}

/// The UDP size of an OPT record among the records after the question, if any. Records that do
/// not parse are ignored: EDNS0 is optional, the question is what matters.
fn edns_size(msg: &[u8], mut pos: usize) -> Option<u16> {
    let records: usize = [6, 8, 10]
        .iter()
        .map(|&at| be16(msg, at).unwrap_or(0) as usize)
        .sum();
    for _ in 0..records {
        let (rtype, class, next) = skip_record(msg, pos).ok()?;
        if rtype == TYPE_OPT {
            return Some(class);
        }
        pos = next;
    }
    None
}

/// The question of a message (query or response): (wire name, qtype, qclass, offset after it).
fn question(msg: &[u8]) -> Result<(Vec<u8>, u16, u16, usize), DnsError> {
    let (wire, pos) = read_name(msg, HEADER)?;
    let qtype = be16(msg, pos).ok_or(DnsError::Truncated)?;
    let qclass = be16(msg, pos + 2).ok_or(DnsError::Truncated)?;
    Ok((wire, qtype, qclass, pos + 4))
}

/// Reads a standard query with one question. Compression pointers are followed (backwards
/// only, so no input loops); the records after the question are only looked at for EDNS0.
pub fn parse_query(msg: &[u8]) -> Result<Query, DnsError> {
    if msg.len() < HEADER {
        return Err(DnsError::Short(msg.len()));
    }
    let id = be16(msg, 0).unwrap_or(0);
    let flags = be16(msg, 2).unwrap_or(0);
    if flags & FLAG_QR != 0 {
        return Err(DnsError::Response);
    }
    let opcode = ((flags & OPCODE_MASK) >> 11) as u8;
    if opcode != 0 {
        return Err(DnsError::Opcode(opcode));
    }
    let count = be16(msg, 4).unwrap_or(0);
    if count != 1 {
        return Err(DnsError::Questions(count));
    }
    let (wire_name, qtype, qclass, end) = question(msg)?;
    Ok(Query {
        id,
        name: name_text(&wire_name),
        qtype,
        qclass,
        rd: flags & FLAG_RD != 0,
        udp_size: edns_size(msg, end),
        wire_name,
    })
}

/// The reply header's flags for a query with these flags: QR, the opcode, RD and CD copied, RA.
fn reply_flags(query_flags: u16, rcode: u8) -> u16 {
    FLAG_QR | FLAG_RA | (query_flags & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | (rcode as u16 & 0xf)
}

fn header(out: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

/// `name` (dots between labels, a trailing dot or not) in wire form, or None when a label is
/// empty or too long, or the whole is too long.
pub fn encode_name(name: &str) -> Option<Vec<u8>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut wire = Vec::with_capacity(name.len() + 2);
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL {
                return None;
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
    }
    wire.push(0);
    (wire.len() <= MAX_NAME).then_some(wire)
}

/// One answer record, its owner written as a pointer to the question's name (offset 12).
fn record(rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut rr = Vec::with_capacity(12 + rdata.len());
    rr.extend_from_slice(&[0xc0, HEADER as u8]);
    rr.extend_from_slice(&rtype.to_be_bytes());
    rr.extend_from_slice(&CLASS_IN.to_be_bytes());
    rr.extend_from_slice(&TTL.to_be_bytes());
    rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    rr.extend_from_slice(rdata);
    rr
}

fn records(answer: &Answer) -> Option<Vec<Vec<u8>>> {
    Some(match answer {
        Answer::Addrs(addrs) => addrs
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => record(TYPE_A, &v4.octets()),
                IpAddr::V6(v6) => record(TYPE_AAAA, &v6.octets()),
            })
            .collect(),
        Answer::Name(name) => vec![record(TYPE_PTR, &encode_name(name)?)],
        Answer::NoData => Vec::new(),
    })
}

/// A reply to `msg` (the original bytes: id, flags RD copied, question echoed), AA off, RA on,
/// TTL 600 as docker. A PTR name that cannot be written as a DNS name gives SERVFAIL.
pub fn reply(msg: &[u8], q: &Query, answer: &Answer) -> Vec<u8> {
    reply_sized(msg, q, answer, usize::from(u16::MAX))
}

/// `reply`, with answers left out from the end until the message fits in `max` bytes; TC is set
/// when one was left out (a UDP client then asks again over TCP), as docker's `truncateResp`.
pub fn reply_sized(msg: &[u8], q: &Query, answer: &Answer, max: usize) -> Vec<u8> {
    let Some(mut rrs) = records(answer) else {
        return error_reply(msg, RCODE_SERVFAIL);
    };
    let fixed = HEADER + q.wire_name.len() + 4;
    let mut flags = reply_flags(be16(msg, 2).unwrap_or(0), 0);
    while !rrs.is_empty() && fixed + rrs.iter().map(Vec::len).sum::<usize>() > max {
        rrs.pop();
        flags |= FLAG_TC;
    }
    let mut out = Vec::with_capacity(fixed + rrs.iter().map(Vec::len).sum::<usize>());
    header(&mut out, q.id, flags, [1, rrs.len() as u16, 0, 0]);
    out.extend_from_slice(&q.wire_name);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&q.qclass.to_be_bytes());
    for rr in rrs {
        out.extend_from_slice(&rr);
    }
    out
}

/// An error reply (SERVFAIL 2, NXDOMAIN 3, REFUSED 5, FORMERR 1...) to `msg`: its id, opcode and
/// RD, RA on, and its question echoed when it has one that can be read. Empty when `msg` is
/// shorter than a header: there is nothing to reply to.
pub fn error_reply(msg: &[u8], rcode: u8) -> Vec<u8> {
    if msg.len() < HEADER {
        return Vec::new();
    }
    let id = be16(msg, 0).unwrap_or(0);
    let flags = reply_flags(be16(msg, 2).unwrap_or(0), rcode);
    let mut out = Vec::with_capacity(UDP_SIZE);
    match parse_query(msg) {
        Ok(q) => {
            header(&mut out, id, flags, [1, 0, 0, 0]);
            out.extend_from_slice(&q.wire_name);
            out.extend_from_slice(&q.qtype.to_be_bytes());
            out.extend_from_slice(&q.qclass.to_be_bytes());
        }
        Err(_) => header(&mut out, id, flags, [0; 4]),
    }
    out
}

/// The response code of a reply, and whether it is authoritative; None when `msg` has no header.
pub fn reply_code(msg: &[u8]) -> Option<(u8, bool)> {
    let flags = be16(msg, 2).filter(|_| msg.len() >= HEADER)?;
    Some(((flags & 0xf) as u8, flags & FLAG_AA != 0))
}

/// Whether `resp` is a reply to `query` with the id `id`: QR set, that id, and the same question
/// (names compared case-insensitively), or no question at all (some servers send none with an
/// error code).
pub fn is_reply_to(resp: &[u8], id: u16, q: &Query) -> bool {
    if resp.len() < HEADER || be16(resp, 0) != Some(id) {
        return false;
    }
    if be16(resp, 2).unwrap_or(0) & FLAG_QR == 0 {
        return false;
    }
    match be16(resp, 4) {
        Some(0) => true,
        Some(1) => matches!(question(resp), Ok((wire, t, c, _))
            if t == q.qtype && c == q.qclass && wire.eq_ignore_ascii_case(&q.wire_name)),
        _ => false,
    }
}

/// `msg` with its id replaced (a query forwarded under a fresh id, or a reply relayed under the
/// client's).
pub fn with_id(msg: &[u8], id: u16) -> Vec<u8> {
    let mut out = msg.to_vec();
    if out.len() >= 2 {
        out[..2].copy_from_slice(&id.to_be_bytes());
    }
    out
}

/// The address a reverse-lookup name stands for: `d.c.b.a.in-addr.arpa` or the 32 nibbles of an
/// `ip6.arpa` name (a lowercased `Query::name`); None for anything else, partial names included.
pub fn ptr_addr(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let labels: Vec<&str> = rest.split('.').collect();
        if labels.len() != 4 {
            return None;
        }
        for (i, label) in labels.iter().rev().enumerate() {
            let canonical = !label.is_empty()
                && label.len() <= 3
                && label.bytes().all(|b| b.is_ascii_digit())
                && (label.len() == 1 || !label.starts_with('0'));
            octets[i] = label.parse().ok().filter(|_| canonical)?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let labels: Vec<&str> = rest.split('.').collect();
    if labels.len() != 32 {
        return None;
    }
    let mut bits: u128 = 0;
    for label in labels.iter().rev() {
        let nibble = match label.as_bytes() {
            [b] => (*b as char).to_digit(16)?,
            _ => return None,
        };
        bits = bits << 4 | nibble as u128;
    }
    Some(IpAddr::V6(Ipv6Addr::from(bits)))
}

/// The nameservers of a `resolv.conf` text, on port 53, at most three (as glibc and docker). An
/// IPv6 address may carry a numeric zone (`fe80::1%2`); one with an interface name is skipped.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let addr = words.next()?;
            let (ip, zone) = match addr.split_once('%') {
                Some((ip, zone)) => (ip, Some(zone.parse::<u32>().ok()?)),
                None => (addr, None),
            };
            match (ip.parse::<IpAddr>().ok()?, zone) {
                (IpAddr::V6(v6), Some(scope)) => {
                    Some(SocketAddr::V6(std::net::SocketAddrV6::new(v6, 53, 0, scope)))
                }
                (_, Some(_)) => None,
                (ip, None) => Some(SocketAddr::new(ip, 53)),
            }
        })
        .take(MAX_NAMESERVERS)
        .collect()
}

//! Small builders over the `nftables` crate's typed schema (libnftables-json(5)): each returns one
//! expression or statement, so the rule lists in `firewall.rs` read like the nft rules they make.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix,
    SetItem, CT,
};
use nftables::stmt::{JumpTarget, Match, Operator, Statement, NAT};

pub(super) type Expr = Expression<'static>;
pub(super) type Stmt = Statement<'static>;

fn string(s: impl Into<String>) -> Expr {
    Expression::String(Cow::Owned(s.into()))
}

fn matches(left: Expr, op: Operator, right: Expr) -> Stmt {
    Statement::Match(Match { left, right, op })
}

fn payload(protocol: &'static str, field: &'static str) -> Expr {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: Cow::Borrowed(protocol),
        field: Cow::Borrowed(field),
    })))
}

fn meta(key: MetaKey) -> Expr {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct(key: &'static str) -> Expr {
    Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }))
}

/// `ip` or `ip6`: the payload protocol of an address.
fn l3(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "ip",
        IpAddr::V6(_) => "ip6",
    }
}

/// `ADDR/LEN`, or the bare address for a full-length prefix.
fn net(addr: IpAddr, len: u8) -> Expr {
    let full = if addr.is_ipv4() { 32 } else { 128 };
    if len >= full {
        return string(addr.to_string());
    }
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(string(addr.to_string())),
        len: u32::from(len),
    }))
}

/// `ip saddr ADDR/LEN` (or `ip6 saddr`).
pub(super) fn saddr(addr: IpAddr, len: u8) -> Stmt {
    matches(payload(l3(addr), "saddr"), Operator::EQ, net(addr, len))
}

/// `ip daddr ADDR` (or `ip6 daddr`).
pub(super) fn daddr(addr: IpAddr) -> Stmt {
    matches(payload(l3(addr), "daddr"), Operator::EQ, net(addr, 128))
}

/// `meta nfproto ipv4` (or `ipv6`): the family of `addr`.
pub(super) fn nfproto(addr: IpAddr) -> Stmt {
    let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
    matches(meta(MetaKey::Nfproto), Operator::EQ, string(family))
}

/// `PROTO dport PORT`.
pub(super) fn dport(proto: &'static str, port: u16) -> Stmt {
    matches(
        payload(proto, "dport"),
        Operator::EQ,
        Expression::Number(u32::from(port)),
    )
}

/// Which interface a match looks at.
#[derive(Clone, Copy)]
pub(super) enum Dir {
    In,
    Out,
}

fn ifname(dir: Dir) -> Expr {
    meta(match dir {
        Dir::In => MetaKey::Iifname,
        Dir::Out => MetaKey::Oifname,
    })
}

/// `iifname NAME` / `oifname NAME`.
pub(super) fn iface(dir: Dir, name: &str) -> Stmt {
    matches(ifname(dir), Operator::EQ, string(name))
}

/// `iifname != NAME` / `oifname != NAME`.
pub(super) fn not_iface(dir: Dir, name: &str) -> Stmt {
    matches(ifname(dir), Operator::NEQ, string(name))
}

/// `iifname != { A, B }` / `oifname != { A, B }`.
pub(super) fn not_ifaces(dir: Dir, names: &[&str]) -> Stmt {
    let set = names.iter().map(|n| SetItem::Element(string(*n))).collect();
    matches(
        ifname(dir),
        Operator::NEQ,
        Expression::Named(NamedExpression::Set(set)),
    )
}

/// `ct state established,related`.
pub(super) fn ct_established() -> Stmt {
    matches(
        ct("state"),
        Operator::IN,
        Expression::List(vec![string("established"), string("related")]),
    )
}

/// `ct status dnat`: the connection was destination-NATed (a published port).
pub(super) fn ct_dnat() -> Stmt {
    matches(ct("status"), Operator::IN, string("dnat"))
}

/// `fib daddr type local`: the destination is one of this host's (this namespace's) addresses.
pub(super) fn daddr_local() -> Stmt {
    let fib = Fib {
        result: FibResult::Type,
        flags: HashSet::from([FibFlag::Daddr]),
    };
    matches(
        Expression::Named(NamedExpression::Fib(fib)),
        Operator::EQ,
        string("local"),
    )
}

pub(super) fn jump(chain: &str) -> Stmt {
    Statement::Jump(JumpTarget {
        target: Cow::Owned(chain.to_string()),
    })
}

pub(super) fn accept() -> Stmt {
    Statement::Accept(None)
}

pub(super) fn drop() -> Stmt {
    Statement::Drop(None)
}

pub(super) fn masquerade() -> Stmt {
    Statement::Masquerade(None)
}

/// `dnat ip to ADDR:PORT` (`dnat ip6 to [ADDR]:PORT`).
pub(super) fn dnat(addr: IpAddr, port: u16) -> Stmt {
    let family = match addr {
        IpAddr::V4(_) => nftables::stmt::NATFamily::IP,
        IpAddr::V6(_) => nftables::stmt::NATFamily::IP6,
    };
    Statement::DNAT(Some(NAT {
        addr: Some(string(addr.to_string())),
        family: Some(family),
        port: Some(Expression::Number(u32::from(port))),
        flags: None,
    }))
}

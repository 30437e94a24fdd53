//! Device access rules (`linux.resources.devices`): as v1 `devices.allow`/`devices.deny` lines, and as
//! the eBPF program cgroup v2 needs instead (`BPF_PROG_TYPE_CGROUP_DEVICE`).
//!
//! Semantics, as the v1 device controller and runc's v2 filter: rules apply in order and a later rule
//! overrides an earlier one; a device matched by no rule is denied once any rule denied everything.
//! The program checks the rules from last to first and returns at the first match, which is the same.

use berth_spec::DeviceCgroup;

use crate::Error;

/// A validated rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// `None` for all types; `Some('c')` or `Some('b')`.
    pub kind: Option<char>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Bits: 1 mknod, 2 read, 4 write (the kernel's BPF_DEVCG_ACC_*).
    pub access: u32,
}

pub fn parse(rules: &[DeviceCgroup]) -> Result<Vec<Rule>, Error> {
    rules
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let field = format!("linux.resources.devices[{i}]");
            let kind = match d.typ.as_deref() {
                None | Some("") | Some("a") => None,
                Some("c") => Some('c'),
                Some("b") => Some('b'),
                Some(t) => {
                    return Err(Error::invalid(
                        &format!("{field}.type"),
                        format!("unknown device type {t:?}"),
                    ))
                }
            };
            let num = |v: Option<i64>, what: &str| -> Result<Option<u32>, Error> {
                match v {
                    None | Some(-1) => Ok(None),
                    Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
                    Some(n) => Err(Error::invalid(
                        &format!("{field}.{what}"),
                        format!("{n} is not a device number"),
                    )),
                }
            };
            let mut access = 0;
            for c in d.access.as_deref().unwrap_or("rwm").chars() {
                access |= match c {
                    'm' => 1,
                    'r' => 2,
                    'w' => 4,
                    _ => {
                        return Err(Error::invalid(
                            &format!("{field}.access"),
                            format!("unknown access {c:?}"),
                        ))
                    }
                };
            }
            if access == 0 {
                access = 7;
            }
            Ok(Rule {
                allow: d.allow,
                kind,
                major: num(d.major, "major")?,
                minor: num(d.minor, "minor")?,
                access,
            })
        })
        .collect()
}

fn access_text(a: u32) -> String {
    [(2, 'r'), (4, 'w'), (1, 'm')]
        .iter()
        .filter(|(b, _)| a & b != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// The v1 lines: (`devices.allow` or `devices.deny`, rule text).
pub fn v1_rules(rules: &[DeviceCgroup]) -> Result<Vec<(String, String)>, Error> {
    Ok(parse(rules)?
        .into_iter()
        .map(|r| {
            let file = if r.allow { "devices.allow" } else { "devices.deny" };
            let all = r.kind.is_none() && r.major.is_none() && r.minor.is_none() && r.access == 7;
            let text = if all {
                "a".to_string()
            } else {
                let n = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_else(|| "*".into());
                format!(
                    "{} {}:{} {}",
                    r.kind.unwrap_or('a'),
                    n(r.major),
                    n(r.minor),
                    access_text(r.access)
                )
            };
            (file.to_string(), text)
        })
        .collect())
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// The device program: registers r2 = type, r3 = access, r4 = major, r5 = minor (from
/// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`), then one block per rule,
/// last rule first, each jumping over itself when it does not match.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        ins(LDX_W, 2, 1, 0, 0),
        ins(AND_K, 2, 0, 0, 0xffff),
        ins(LDX_W, 3, 1, 0, 0),
        ins(RSH_K, 3, 0, 0, 16),
        ins(LDX_W, 4, 1, 4, 0),
        ins(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut block = Vec::new();
        if let Some(k) = r.kind {
            block.push(ins(JNE_K, 2, 0, 0, if k == 'b' { 1 } else { 2 }));
        }
        if r.access != 7 {
            // The access asked for must be within the rule's: (asked & !allowed) == 0.
            block.push(ins(MOV_X, 6, 3, 0, 0));
            block.push(ins(AND_K, 6, 0, 0, !(r.access as i32)));
            block.push(ins(JNE_K, 6, 0, 0, 0));
        }
        if let Some(m) = r.major {
            block.push(ins(JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor {
            block.push(ins(JNE_K, 5, 0, 0, m as i32));
        }
        let unconditional = block.is_empty();
        block.push(ins(MOV_K, 0, 0, 0, r.allow as i32));
        block.push(ins(EXIT, 0, 0, 0, 0));
        if unconditional {
            // Matches every access: what follows could never run, and the verifier refuses
            // unreachable instructions.
            p.extend(block);
            return p;
        }
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.code == JNE_K {
                // Jump to the first instruction after this block.
                insn.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(ins(MOV_K, 0, 0, 0, 0));
    p.push(ins(EXIT, 0, 0, 0, 0));
    p
}

/// Whether the rules let everything through (no program needed).
pub fn allows_all(rules: &[Rule]) -> bool {
    rules.is_empty()
        || rules.last().is_some_and(|r| {
            r.allow && r.kind.is_none() && r.major.is_none() && r.minor.is_none() && r.access == 7
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter of the instructions `program` emits, to check its decisions.
    fn run(p: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [kind | (access << 16), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            pc += 1;
            match i.code {
                LDX_W => r[i.dst as usize] = ctx[(i.off / 4) as usize] as u64,
                AND_K => r[i.dst as usize] &= i.imm as i64 as u64,
                RSH_K => r[i.dst as usize] >>= i.imm,
                MOV_K => r[i.dst as usize] = i.imm as i64 as u64,
                MOV_X => r[i.dst as usize] = r[i.src as usize],
                JNE_K => {
                    if r[i.dst as usize] != i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    fn dc(
        allow: bool,
        t: Option<&str>,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceCgroup {
        DeviceCgroup {
            allow,
            typ: t.map(Into::into),
            major,
            minor,
            access: Some(access.into()),
        }
    }

    #[test]
    fn docker_like_rules() {
        let rules = parse(&[
            dc(false, None, None, None, "rwm"),
            dc(true, Some("c"), Some(1), Some(3), "rwm"),
            dc(true, Some("c"), Some(5), None, "rw"),
            dc(false, Some("c"), Some(5), Some(1), "w"),
        ])
        .unwrap();
        let p = program(&rules);
        assert_eq!(run(&p, 2, 2, 1, 3), 1, "read /dev/null");
        assert_eq!(run(&p, 2, 1, 1, 3), 1, "mknod /dev/null");
        assert_eq!(run(&p, 1, 2, 1, 3), 0, "block 1:3");
        assert_eq!(run(&p, 2, 2, 1, 5), 0, "/dev/zero not allowed");
        assert_eq!(run(&p, 2, 4, 5, 0), 1, "write /dev/tty");
        assert_eq!(run(&p, 2, 1, 5, 0), 0, "mknod /dev/tty not allowed");
        assert_eq!(run(&p, 2, 2, 5, 1), 1, "read /dev/console");
        assert_eq!(
            run(&p, 2, 4, 5, 1),
            0,
            "write /dev/console denied by the last rule"
        );
        assert!(!allows_all(&rules));
    }

    #[test]
    fn an_unconditional_rule_ends_the_program() {
        let rules = parse(&[
            dc(false, None, None, None, "rwm"),
            dc(true, Some("c"), Some(1), Some(3), "rwm"),
        ])
        .unwrap();
        let p = program(&rules);
        assert_eq!(p.last().unwrap().code, EXIT);
        assert_eq!(p[p.len() - 2], ins(MOV_K, 0, 0, 0, 0));
        assert_eq!(
            p.iter().filter(|i| i.code == EXIT).count(),
            2,
            "no unreachable default after the deny-all"
        );
        assert_eq!(run(&p, 2, 2, 1, 3), 1);
        assert_eq!(run(&p, 2, 2, 1, 5), 0);
        let allow_all = parse(&[dc(true, None, None, None, "rwm")]).unwrap();
        assert!(allows_all(&allow_all));
    }

    #[test]
    fn v1_lines() {
        let lines = v1_rules(&[
            dc(false, None, None, None, "rwm"),
            dc(true, Some("c"), Some(1), None, "rm"),
            dc(true, Some("b"), Some(8), Some(0), ""),
        ])
        .unwrap();
        assert_eq!(
            lines,
            vec![
                ("devices.deny".to_string(), "a".to_string()),
                ("devices.allow".to_string(), "c 1:* rm".to_string()),
                ("devices.allow".to_string(), "b 8:0 rwm".to_string()),
            ]
        );
        assert!(parse(&[dc(true, Some("x"), None, None, "r")])
            .unwrap_err()
            .to_string()
            .contains("devices[0].type"));
        assert!(parse(&[dc(true, None, None, None, "rq")]).is_err());
    }

    #[test]
    fn encoding() {
        let i = ins(LDX_W, 2, 1, 4, 0).encode();
        assert_eq!(i, [0x61, 0x12, 4, 0, 0, 0, 0, 0]);
    }
}

//! Profile translation tests (no root: planning and compiling need none; loading is in tests/load.rs).

use berth_spec::{Seccomp, Syscall, SyscallArg};
use berth_sys::seccomp::{FLAG_LOG, FLAG_NEW_LISTENER, FLAG_WAIT_KILLABLE_RECV};
use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpSyscall};

use super::*;

pub(crate) fn rule(names: &[&str], action: &str) -> Syscall {
    Syscall {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: action.into(),
        errno_ret: None,
        args: vec![],
    }
}

fn arg(index: u32, op: &str, value: u64, value_two: Option<u64>) -> SyscallArg {
    SyscallArg {
        index,
        value,
        value_two,
        op: op.into(),
    }
}

fn profile(default: &str, syscalls: Vec<Syscall>) -> Seccomp {
    Seccomp {
        default_action: default.into(),
        architectures: vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into()],
        syscalls,
        ..Default::default()
    }
}

/// A profile shaped like docker's default: ~360 allowed names on three architectures, a few rules
/// with argument comparisons, ERRNO by default.
pub(crate) fn docker_sized() -> Seccomp {
    let mut names: Vec<String> = (0..335)
        .filter_map(|n| ScmpSyscall::from(n).get_name().ok())
        .filter(|n| n != "personality" && n != "clone")
        .collect();
    names.extend(newer::NEWER.iter().take(27).map(|(n, _)| n.to_string()));
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut personality = rule(&["personality"], "SCMP_ACT_ALLOW");
    personality.args = vec![
        arg(0, "SCMP_CMP_EQ", 0, None),
        arg(0, "SCMP_CMP_EQ", 8, None),
        arg(0, "SCMP_CMP_EQ", 0x20000, None),
    ];
    let mut clone = rule(&["clone"], "SCMP_ACT_ALLOW");
    clone.args = vec![arg(0, "SCMP_CMP_MASKED_EQ", 0x7e02_0000, Some(0))];
    let mut clone3 = rule(&["clone3"], "SCMP_ACT_ERRNO");
    clone3.errno_ret = Some(38);
    Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(1),
        architectures: vec![
            "SCMP_ARCH_X86_64".into(),
            "SCMP_ARCH_X86".into(),
            "SCMP_ARCH_X32".into(),
        ],
        syscalls: vec![rule(&refs, "SCMP_ACT_ALLOW"), personality, clone, clone3],
        ..Default::default()
    }
}

fn error(s: &Seccomp) -> String {
    compile(s).unwrap_err().to_string()
}

#[test]
fn compiles_a_profile() {
    let p = compile(&profile(
        "SCMP_ACT_ERRNO",
        vec![rule(&["read", "write", "exit_group", "futex"], "SCMP_ACT_ALLOW")],
    ))
    .unwrap();
    assert!(p.len() > 5 && p.len() < 200, "{}", p.len());
    assert_eq!(p.flags(), 0);
    assert!(!p.has_listener());
    // The program starts by loading the architecture (offset 4 of struct seccomp_data) and ends in a
    // return (BPF_RET).
    assert_eq!(p.instructions()[0].code, 0x20);
    assert_eq!(p.instructions()[0].k, 4);
    assert_eq!(p.instructions().last().unwrap().code & 0x07, 0x06);
}

#[test]
fn invalid_names_fail_with_their_field() {
    let cases: Vec<(Seccomp, &str)> = vec![
        (
            profile("SCMP_ACT_NOPE", vec![]),
            "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\"",
        ),
        (
            profile(
                "SCMP_ACT_ALLOW",
                vec![
                    rule(&["read"], "SCMP_ACT_ERRNO"),
                    rule(&["getcwd"], "SCMP_ACT_BOGUS"),
                ],
            ),
            "linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_BOGUS\"",
        ),
        (
            profile("SCMP_ACT_ALLOW", vec![rule(&["read", "foo"], "SCMP_ACT_ERRNO")]),
            "linux.seccomp.syscalls[0].names[1]: unknown syscall \"foo\"",
        ),
        (
            profile("SCMP_ACT_ALLOW", vec![rule(&[""], "SCMP_ACT_ERRNO")]),
            "linux.seccomp.syscalls[0].names[0]: empty syscall name",
        ),
        (
            profile("SCMP_ACT_ALLOW", vec![rule(&[], "SCMP_ACT_ERRNO")]),
            "linux.seccomp.syscalls[0].names: no syscall named",
        ),
    ];
    for (s, want) in cases {
        let e = error(&s);
        assert!(e.starts_with(want), "{e}");
    }
    let mut s = profile("SCMP_ACT_ALLOW", vec![]);
    s.architectures.push("SCMP_ARCH_VAX".into());
    assert!(error(&s).starts_with("linux.seccomp.architectures[2]: unknown architecture"));
    s = profile("SCMP_ACT_ALLOW", vec![]);
    s.flags = vec![
        "SECCOMP_FILTER_FLAG_LOG".into(),
        "SECCOMP_FILTER_FLAG_NOPE".into(),
    ];
    assert!(error(&s).starts_with("linux.seccomp.flags[1]: unknown flag"));
}

#[test]
fn invalid_arguments_and_values_fail_with_their_field() {
    let mut r = rule(&["getcwd"], "SCMP_ACT_ERRNO");
    r.args = vec![arg(0, "SCMP_CMP_EQ", 1, None), arg(1, "SCMP_CMP_FOO", 1, None)];
    let e = error(&profile("SCMP_ACT_ALLOW", vec![r.clone()]));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].args[1].op: unknown operator \"SCMP_CMP_FOO\""),
        "{e}"
    );
    r.args = vec![arg(6, "SCMP_CMP_EQ", 1, None)];
    let e = error(&profile("SCMP_ACT_ALLOW", vec![r.clone()]));
    assert!(e.starts_with("linux.seccomp.syscalls[0].args[0].index: 6"), "{e}");
    r.args.clear();
    r.errno_ret = Some(70000);
    let e = error(&profile("SCMP_ACT_ALLOW", vec![r]));
    assert!(e.starts_with("linux.seccomp.syscalls[0].errnoRet: 70000"), "{e}");
    let mut s = profile("SCMP_ACT_ERRNO", vec![]);
    s.default_errno_ret = Some(1 << 20);
    assert!(error(&s).starts_with("linux.seccomp.defaultErrnoRet:"));
}

#[test]
fn notify_needs_a_listener_and_spares_the_handover() {
    let mut s = profile("SCMP_ACT_ALLOW", vec![rule(&["mknodat"], "SCMP_ACT_NOTIFY")]);
    assert!(error(&s).starts_with("linux.seccomp.listenerPath:"));
    s.listener_path = Some("/run/agent.sock".into());
    s.flags = vec![
        "SECCOMP_FILTER_FLAG_TSYNC".into(),
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV".into(),
    ];
    let p = compile(&s).unwrap();
    assert!(p.has_listener());
    // TSYNC is not passed on (the kernel refuses it with NEW_LISTENER; the init is single-threaded).
    assert_eq!(p.flags(), FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV);
    let mut d = s.clone();
    d.default_action = "SCMP_ACT_NOTIFY".into();
    assert!(error(&d).starts_with("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY"));
    let mut r = s.clone();
    r.syscalls = vec![rule(&["mknodat", "sendmsg"], "SCMP_ACT_NOTIFY")];
    assert!(error(&r).starts_with("linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY"));
    // A listener path without NOTIFY rules is accepted (runc does) and gives no listener.
    let mut quiet = s.clone();
    quiet.syscalls = vec![rule(&["mknodat"], "SCMP_ACT_ERRNO")];
    let p = compile(&quiet).unwrap();
    assert!(!p.has_listener());
    assert_eq!(p.flags(), 0, "WAIT_KILLABLE_RECV is dropped without a listener");
}

#[test]
fn actions_and_return_values_follow_runc() {
    let mut s = profile("SCMP_ACT_ERRNO", vec![]);
    assert_eq!(plan::plan(&s).unwrap().default, ScmpAction::Errno(libc::EPERM));
    s.default_errno_ret = Some(38);
    assert_eq!(plan::plan(&s).unwrap().default, ScmpAction::Errno(38));
    s.default_action = "SCMP_ACT_TRACE".into();
    assert_eq!(plan::plan(&s).unwrap().default, ScmpAction::Trace(38));
    s.default_action = "SCMP_ACT_KILL".into();
    assert_eq!(plan::plan(&s).unwrap().default, ScmpAction::KillThread);
    s.flags = vec![
        "SECCOMP_FILTER_FLAG_LOG".into(),
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW".into(),
    ];
    assert_eq!(plan::plan(&s).unwrap().flags, FLAG_LOG | 4);
    for a in plan::ACTIONS {
        let mut r = rule(&["getcwd"], a);
        if a == "SCMP_ACT_NOTIFY" {
            continue;
        }
        r.errno_ret = Some(5);
        let p = compile(&profile("SCMP_ACT_ALLOW", vec![r])).unwrap();
        assert!(!p.is_empty(), "{a}");
    }
}

#[test]
fn rules_with_the_default_action_are_skipped() {
    let mut same = rule(&["getcwd"], "SCMP_ACT_ERRNO");
    same.errno_ret = Some(1);
    let mut other = rule(&["getpid"], "SCMP_ACT_ERRNO");
    other.errno_ret = Some(2);
    let mut s = profile("SCMP_ACT_ERRNO", vec![same, other]);
    s.default_errno_ret = Some(1);
    let plan = plan::plan(&s).unwrap();
    let names: Vec<&str> = plan.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["getpid"]);
    assert!(compile(&s).is_ok());
}

#[test]
fn arguments_on_one_index_become_separate_rules() {
    let mut r = rule(&["personality"], "SCMP_ACT_ALLOW");
    r.args = vec![arg(0, "SCMP_CMP_EQ", 0, None), arg(0, "SCMP_CMP_EQ", 8, None)];
    let p = plan::plan(&profile("SCMP_ACT_ERRNO", vec![r.clone()])).unwrap();
    let eq = |v| ScmpArgCompare::new(0, ScmpCompareOp::Equal, v);
    assert_eq!(p.rules[0].condition_sets, vec![vec![eq(0)], vec![eq(8)]]);
    // Different indexes: one rule, all comparisons must hold.
    r.args = vec![
        arg(0, "SCMP_CMP_EQ", 0, None),
        arg(1, "SCMP_CMP_MASKED_EQ", 0xf0, Some(0x10)),
    ];
    let p = plan::plan(&profile("SCMP_ACT_ERRNO", vec![r])).unwrap();
    let masked = ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xf0), 0x10);
    assert_eq!(p.rules[0].condition_sets, vec![vec![eq(0), masked]]);
    // No arguments: one unconditional rule.
    let p = plan::plan(&profile(
        "SCMP_ACT_ERRNO",
        vec![rule(&["read"], "SCMP_ACT_ALLOW")],
    ))
    .unwrap();
    assert_eq!(p.rules[0].condition_sets, vec![Vec::<ScmpArgCompare>::new()]);
}

#[test]
fn names_newer_than_libseccomp_resolve_by_number() {
    let p = compile(&profile(
        "SCMP_ACT_ERRNO",
        vec![rule(
            &["read", "mseal", "fchmodat2", "cachestat"],
            "SCMP_ACT_ALLOW",
        )],
    ))
    .unwrap();
    let plain = compile(&profile(
        "SCMP_ACT_ERRNO",
        vec![rule(&["read"], "SCMP_ACT_ALLOW")],
    ))
    .unwrap();
    assert!(p.len() > plain.len());
}

#[test]
fn a_docker_sized_profile_compiles_within_the_kernel_limit() {
    let s = docker_sized();
    let p = compile(&s).unwrap();
    assert!(p.len() > 300 && p.len() <= 4096, "{}", p.len());
    assert_eq!(library_version().unwrap().split('.').count(), 3);
    assert_eq!(features()["enabled"], true);
    assert_eq!(features()["actions"].as_array().unwrap().len(), 9);
}

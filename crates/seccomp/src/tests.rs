//! Profile translation tests (no root: compiling needs none).

use berth_spec::{Seccomp, Syscall, SyscallArg};

use super::*;

pub(crate) fn rule(names: &[&str], action: &str) -> Syscall {
    Syscall {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: action.into(),
        errno_ret: None,
        args: vec![],
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

#[test]
fn compiles_a_profile() {
    let p = compile(&profile(
        "SCMP_ACT_ERRNO",
        vec![rule(&["read", "write", "exit_group", "futex"], "SCMP_ACT_ALLOW")],
    ))
    .unwrap();
    assert!(
        p.instructions() > 5 && p.instructions() < 200,
        "{}",
        p.instructions()
    );
    assert_eq!(p.flags, 0);
}

#[test]
fn unknown_names_fail_with_their_field() {
    let e = compile(&profile("SCMP_ACT_NOPE", vec![]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("linux.seccomp.defaultAction:") && e.contains("SCMP_ACT_NOPE"),
        "{e}"
    );
    let e = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![
            rule(&["read"], "SCMP_ACT_ALLOW"),
            rule(&["getcwd"], "SCMP_ACT_BOGUS"),
        ],
    ))
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("linux.seccomp.syscalls[1].action:"), "{e}");
    let mut s = profile("SCMP_ACT_ALLOW", vec![]);
    s.architectures.push("SCMP_ARCH_VAX".into());
    assert!(compile(&s)
        .unwrap_err()
        .to_string()
        .starts_with("linux.seccomp.architectures[2]:"));
    let mut s = profile("SCMP_ACT_ALLOW", vec![]);
    s.flags = vec!["SECCOMP_FILTER_FLAG_NOPE".into()];
    assert!(compile(&s)
        .unwrap_err()
        .to_string()
        .starts_with("linux.seccomp.flags[0]:"));
    let mut r = rule(&["getcwd"], "SCMP_ACT_ERRNO");
    r.args = vec![SyscallArg {
        index: 0,
        value: 1,
        value_two: None,
        op: "SCMP_CMP_FOO".into(),
    }];
    assert!(compile(&profile("SCMP_ACT_ALLOW", vec![r]))
        .unwrap_err()
        .to_string()
        .starts_with("linux.seccomp.syscalls[0].args[0].op:"));
    assert!(
        compile(&profile("SCMP_ACT_ALLOW", vec![rule(&[""], "SCMP_ACT_ERRNO")]))
            .unwrap_err()
            .to_string()
            .contains("syscalls[0].names[0]")
    );
    assert!(compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getcwd"], "SCMP_ACT_NOTIFY")]
    ))
    .is_err());
}

#[test]
fn unknown_syscalls_are_errors_but_newer_ones_resolve() {
    let e = compile(&profile(
        "SCMP_ACT_ERRNO",
        vec![rule(&["read", "no_such_syscall_xyz"], "SCMP_ACT_ALLOW")],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].names[1]:") && e.contains("no_such_syscall_xyz"),
        "{e}"
    );
    // Names of recent kernels (in docker's default profile) compile whatever this libseccomp knows.
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
    assert!(p.instructions() > plain.instructions());
}

#[test]
fn same_index_arguments_become_separate_rules() {
    let arg = |v| SyscallArg {
        index: 0,
        value: v,
        value_two: None,
        op: "SCMP_CMP_EQ".into(),
    };
    let mut r = rule(&["personality"], "SCMP_ACT_ALLOW");
    r.args = vec![arg(0), arg(8), arg(0x20000)];
    assert!(compile(&profile("SCMP_ACT_ERRNO", vec![r])).is_ok());
    let mut r = rule(&["clone"], "SCMP_ACT_ALLOW");
    r.args = vec![SyscallArg {
        index: 0,
        value: 0x7e020000,
        value_two: Some(0),
        op: "SCMP_CMP_MASKED_EQ".into(),
    }];
    assert!(compile(&profile("SCMP_ACT_ERRNO", vec![r])).is_ok());
}

#[test]
fn a_large_profile_compiles() {
    // About the size of docker's default profile.
    let names: Vec<String> = (0..330)
        .filter_map(|n| ScmpSyscall::from(n).get_name().ok())
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let p = compile(&profile("SCMP_ACT_ERRNO", vec![rule(&refs, "SCMP_ACT_ALLOW")])).unwrap();
    assert!(p.instructions() > 300, "{}", p.instructions());
    assert_eq!(library_version().unwrap().split('.').count(), 3);
    assert_eq!(features()["enabled"], true);
}

//! Loads real filters in forked children and checks what the kernel then does. The test harness is
//! multi-threaded and `berth_sys::fork` refuses to fork a multi-threaded process, so this file has no
//! harness (`harness = false`): `main` runs each case in a child (no_new_privs, load, check, `_exit`)
//! and judges it from the parent's `waitpid` status. No root is needed: no_new_privs allows loading.

use std::os::fd::OwnedFd;

use berth_seccomp::compile;
use berth_spec::{Seccomp, Syscall, SyscallArg};
use berth_sys::Forked;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};

/// How a case's child should end.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Its check held (exit status 0).
    Pass,
    /// The filter killed it (SIGSYS).
    Killed,
}

struct Case {
    name: &'static str,
    profile: Seccomp,
    /// Runs in the child after the load, with the listener descriptor the load returned.
    check: fn(Option<OwnedFd>) -> bool,
    expect: Expect,
}

fn rule(names: &[&str], action: &str, errno: Option<u32>, args: Vec<SyscallArg>) -> Syscall {
    Syscall {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: action.into(),
        errno_ret: errno,
        args,
    }
}

fn allow_by_default(syscalls: Vec<Syscall>) -> Seccomp {
    Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        syscalls,
        ..Default::default()
    }
}

/// A comparison on getcwd's size argument (std's first getcwd call passes a 512-byte buffer).
fn size(op: &str, value: u64, value_two: Option<u64>) -> SyscallArg {
    SyscallArg {
        index: 1,
        value,
        value_two,
        op: op.into(),
    }
}

/// The errno of getcwd (through libc, by std), or None when it succeeds. The errnos the cases use avoid
/// ERANGE (std retries with a larger buffer) and ENAMETOOLONG (glibc falls back to walking the tree).
fn getcwd_errno() -> Option<i32> {
    std::env::current_dir().err().and_then(|e| e.raw_os_error())
}

fn run(case: &Case) -> bool {
    let prog = match compile(&case.profile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("seccomp load: {}: compile: {e}", case.name);
            return false;
        }
    };
    let Ok(forked) = berth_sys::fork() else {
        eprintln!("seccomp load: {}: fork failed", case.name);
        return false;
    };
    match forked {
        Forked::Child => {
            let ok = berth_sys::caps::set_no_new_privs().is_ok()
                && match prog.load() {
                    Ok(listener) => (case.check)(listener),
                    Err(_) => false,
                };
            berth_sys::exit_immediately(if ok { 0 } else { 1 })
        }
        Forked::Parent(pid) => {
            let status = waitpid(nix::unistd::Pid::from_raw(pid), None);
            match (case.expect, status) {
                (Expect::Pass, Ok(WaitStatus::Exited(_, 0))) => true,
                (Expect::Killed, Ok(WaitStatus::Signaled(_, Signal::SIGSYS, _))) => true,
                (_, other) => {
                    eprintln!("seccomp load: {}: child ended with {other:?}", case.name);
                    false
                }
            }
        }
    }
}

/// Argument comparisons on getcwd's arguments.
fn argument_cases() -> Vec<Case> {
    vec![
        Case {
            name: "masked argument, no match",
            profile: allow_by_default(vec![rule(
                &["getcwd"],
                "SCMP_ACT_ERRNO",
                Some(33),
                vec![size("SCMP_CMP_MASKED_EQ", 0x1000, Some(0x1000))],
            )]),
            check: |_| getcwd_errno().is_none(),
            expect: Expect::Pass,
        },
        Case {
            name: "masked argument, match",
            profile: allow_by_default(vec![rule(
                &["getcwd"],
                "SCMP_ACT_ERRNO",
                Some(33),
                vec![size("SCMP_CMP_MASKED_EQ", 0x300, Some(0x200))],
            )]),
            check: |_| getcwd_errno() == Some(33),
            expect: Expect::Pass,
        },
        Case {
            name: "greater or equal",
            profile: allow_by_default(vec![rule(
                &["getcwd"],
                "SCMP_ACT_ERRNO",
                Some(42),
                vec![size("SCMP_CMP_GE", 256, None)],
            )]),
            check: |_| getcwd_errno() == Some(42),
            expect: Expect::Pass,
        },
        Case {
            name: "same argument twice: either comparison matches",
            profile: allow_by_default(vec![rule(
                &["getcwd"],
                "SCMP_ACT_ERRNO",
                Some(40),
                vec![size("SCMP_CMP_EQ", 100, None), size("SCMP_CMP_EQ", 512, None)],
            )]),
            check: |_| getcwd_errno() == Some(40),
            expect: Expect::Pass,
        },
        Case {
            name: "two arguments: both must match",
            profile: allow_by_default(vec![rule(
                &["getcwd"],
                "SCMP_ACT_ERRNO",
                Some(35),
                vec![
                    SyscallArg {
                        index: 0,
                        value: 0,
                        value_two: None,
                        op: "SCMP_CMP_NE".into(),
                    },
                    size("SCMP_CMP_EQ", 513, None),
                ],
            )]),
            check: |_| getcwd_errno().is_none(),
            expect: Expect::Pass,
        },
    ]
}

/// Whole profiles: actions, default actions, architectures, size, notification.
fn profile_cases() -> Vec<Case> {
    let mut deny = Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(1),
        architectures: vec![
            "SCMP_ARCH_X86_64".into(),
            "SCMP_ARCH_X86".into(),
            "SCMP_ARCH_X32".into(),
        ],
        flags: vec!["SECCOMP_FILTER_FLAG_LOG".into()],
        ..Default::default()
    };
    let needed = [
        "exit_group",
        "exit",
        "brk",
        "mmap",
        "munmap",
        "mremap",
        "madvise",
        "futex",
    ];
    deny.syscalls = vec![rule(&needed, "SCMP_ACT_ALLOW", None, vec![])];
    // About docker's default profile in size (libseccomp's binary-tree layout), getcwd left out.
    let mut big = deny.clone();
    let names: Vec<String> = (0..335)
        .filter_map(|n| libseccomp::ScmpSyscall::from(n).get_name().ok())
        .filter(|n| n != "getcwd")
        .chain(["mseal", "fchmodat2", "cachestat", "clone3"].map(String::from))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    big.syscalls = vec![rule(&refs, "SCMP_ACT_ALLOW", None, vec![])];
    let mut notify = allow_by_default(vec![rule(&["mknodat"], "SCMP_ACT_NOTIFY", None, vec![])]);
    notify.listener_path = Some("/nonexistent/agent.sock".into());
    vec![
        Case {
            name: "errno",
            profile: allow_by_default(vec![rule(&["getcwd"], "SCMP_ACT_ERRNO", Some(38), vec![])]),
            check: |_| getcwd_errno() == Some(38),
            expect: Expect::Pass,
        },
        Case {
            name: "no rule, no effect",
            profile: allow_by_default(vec![]),
            check: |_| getcwd_errno().is_none(),
            expect: Expect::Pass,
        },
        Case {
            name: "errno by default, allow list, three architectures",
            profile: deny,
            check: |_| getcwd_errno() == Some(1),
            expect: Expect::Pass,
        },
        Case {
            name: "docker-sized allow list",
            profile: big,
            check: |_| getcwd_errno() == Some(1) && std::fs::metadata("/").is_ok(),
            expect: Expect::Pass,
        },
        Case {
            name: "kill process",
            profile: allow_by_default(vec![rule(&["getcwd"], "SCMP_ACT_KILL_PROCESS", None, vec![])]),
            check: |_| getcwd_errno().is_some(),
            expect: Expect::Killed,
        },
        Case {
            name: "notify returns a listener",
            profile: notify,
            check: |listener| listener.is_some(),
            expect: Expect::Pass,
        },
    ]
}

fn main() -> std::process::ExitCode {
    let (mut passed, mut failed) = (0, 0);
    for case in profile_cases().into_iter().chain(argument_cases()) {
        if run(&case) {
            passed += 1;
        } else {
            failed += 1;
            eprintln!("seccomp load: {}: FAILED", case.name);
        }
    }
    println!("seccomp load: {passed} passed, {failed} failed");
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

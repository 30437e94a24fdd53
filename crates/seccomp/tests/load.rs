//! Loads real filters in forked children (the test harness is multi-threaded, and a filter must be
//! loaded by a single-threaded process here: this file has no harness and forks from main).

use berth_seccomp::compile;
use berth_spec::{Seccomp, Syscall, SyscallArg};
use berth_sys::Forked;

fn profile(syscalls: Vec<Syscall>) -> Seccomp {
    Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        syscalls,
        ..Default::default()
    }
}

/// Runs `check` in a child after loading `s`; the child's exit code 0 means the check held.
fn in_child(s: &Seccomp, check: fn() -> bool) -> bool {
    let prog = compile(s).expect("compile");
    match berth_sys::fork().expect("fork") {
        Forked::Child => {
            let ok = berth_sys::caps::set_no_new_privs().is_ok() && prog.load().is_ok() && check();
            berth_sys::exit_immediately(if ok { 0 } else { 1 })
        }
        Forked::Parent(pid) => matches!(
            nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None),
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0))
        ),
    }
}

/// A test case: its name, the profile, and the check run after loading it.
type Case = (&'static str, Seccomp, fn() -> bool);

fn getcwd_errno() -> Option<i32> {
    std::env::current_dir().err().and_then(|e| e.raw_os_error())
}

fn main() -> std::process::ExitCode {
    let errno = Syscall {
        names: vec!["getcwd".into()],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(38),
        args: vec![],
    };
    let masked = Syscall {
        names: vec!["getcwd".into()],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(33),
        // Only when the size argument has bit 0x1000 set.
        args: vec![SyscallArg {
            index: 1,
            value: 0x1000,
            value_two: Some(0x1000),
            op: "SCMP_CMP_MASKED_EQ".into(),
        }],
    };
    let mut masked_hit = masked.clone();
    // std's first getcwd call passes a 512-byte buffer: bit 0x200 of the size is set.
    masked_hit.args[0].value = 0x200;
    masked_hit.args[0].value_two = Some(0x200);
    let cases: [Case; 4] = [
        ("errno", profile(vec![errno]), || getcwd_errno() == Some(38)),
        ("no rule, no effect", profile(vec![]), || getcwd_errno().is_none()),
        ("masked argument, no match", profile(vec![masked]), || {
            getcwd_errno().is_none()
        }),
        ("masked argument, match", profile(vec![masked_hit]), || {
            getcwd_errno() == Some(33)
        }),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, s, check) in cases {
        if in_child(&s, check) {
            passed += 1;
        } else {
            failed += 1;
            eprintln!("seccomp load: {name}: FAILED");
        }
    }
    println!("seccomp load: {passed} passed, {failed} failed");
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

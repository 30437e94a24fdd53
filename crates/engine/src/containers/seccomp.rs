//! berth's default seccomp profile: the system calls docker's default profile allows, and its
//! conditions (capabilities that unlock more, per-architecture calls, `clone` without namespace
//! flags, `personality` values, no `AF_VSOCK` sockets), written as berth's own data and built per
//! container from its capability set, so a container gets exactly the rules that apply to it.

use berth_spec as oci;

/// Allowed for every container (alphabetical).
const BASE: &str = "
    _llseek _newselect accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown
    chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range
    creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
    epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2
    fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat
    fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
    fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat
    get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid getegid32 geteuid
    geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid
    getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit getrusage
    getsid getsockname getsockopt gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
    inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents
    io_pgetevents_time64 io_setup io_submit io_uring_enter io_uring_register io_uring_setup ioctl
    ioprio_get ioprio_set ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
    lchown lchown32 lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr
    lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
    mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv
    msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat open openat openat2
    pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
    ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease process_vm_readv
    process_vm_writev pselect6 pselect6_time64 ptrace pwrite64 pwritev pwritev2 read readahead
    readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
    removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
    rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
    rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
    sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
    sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
    semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
    set_robust_list set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid
    setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
    setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt setuid setuid32
    setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
    socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
    sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
    timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
    timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
    umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
    waitpid write writev
";

/// Calls a capability unlocks.
const BY_CAP: &[(&str, &str)] = &[
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    (
        "CAP_SYS_ADMIN",
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount \
         mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname \
         sethostname setns syslog umount umount2 unshare",
    ),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module finit_module init_module"),
    ("CAP_SYS_PACCT", "acct"),
    (
        "CAP_SYS_PTRACE",
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    ),
    ("CAP_SYS_RAWIO", "ioperm iopl"),
    ("CAP_SYS_TIME", "clock_settime clock_settime64 settimeofday stime"),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    (
        "CAP_SYS_NICE",
        "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    ),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
];

/// Calls only some architectures have (by Go's architecture names).
const BY_ARCH: &[(&[&str], &str)] = &[
    (&["amd64", "x32"], "arch_prctl"),
    (&["amd64", "x32", "386"], "modify_ldt"),
    (
        &["arm", "arm64"],
        "arm_fadvise64_64 arm_sync_file_range breakpoint cacheflush set_tls sync_file_range2",
    ),
    (&["ppc64le"], "swapcontext sync_file_range2"),
    (
        &["s390x"],
        "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
    ),
    (&["riscv64"], "riscv_flush_icache"),
];

/// `personality(2)` values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the
/// query (0xffffffff).
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The namespace flags of `clone(2)` (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET):
/// without CAP_SYS_ADMIN, `clone` is allowed only with none of them set.
const CLONE_NS_FLAGS: u64 = 0x7E02_0000;

/// `AF_VSOCK`: no socket of that family.
const AF_VSOCK: u64 = 40;

const ENOSYS: u32 = 38;
const EPERM: u32 = 1;

/// The seccomp architectures of a Go architecture name (the native one and its compat ABIs).
pub fn architectures(arch: &str) -> Vec<String> {
    let a: &[&str] = match arch {
        "amd64" => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "arm64" => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "386" => &["SCMP_ARCH_X86"],
        "arm" => &["SCMP_ARCH_ARM"],
        "ppc64le" => &["SCMP_ARCH_PPC64LE"],
        "s390x" => &["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "riscv64" => &["SCMP_ARCH_RISCV64"],
        _ => &[],
    };
    a.iter().map(|s| s.to_string()).collect()
}

fn allow(names: impl IntoIterator<Item = String>) -> oci::Syscall {
    oci::Syscall {
        names: names.into_iter().collect(),
        action: "SCMP_ACT_ALLOW".into(),
        ..Default::default()
    }
}

fn arg(index: u32, value: u64, op: &str) -> oci::SyscallArg {
    oci::SyscallArg {
        index,
        value,
        value_two: None,
        op: op.into(),
    }
}

fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split_whitespace().map(String::from)
}

/// The default profile for a container with capability set `caps` on architecture `arch` (Go's
/// name: `amd64`, `arm64`, ...).
pub fn default_profile(arch: &str, caps: &[String]) -> oci::Seccomp {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut rules = vec![allow(words(BASE))];
    for (cap, names) in BY_CAP {
        if has(cap) {
            rules.push(allow(words(names)));
        }
    }
    for (arches, names) in BY_ARCH {
        if arches.contains(&arch) {
            rules.push(allow(words(names)));
        }
    }
    rules.push(oci::Syscall {
        args: vec![arg(0, AF_VSOCK, "SCMP_CMP_NE")],
        ..allow(["socket".to_string()])
    });
    for p in PERSONALITIES {
        rules.push(oci::Syscall {
            args: vec![arg(0, p, "SCMP_CMP_EQ")],
            ..allow(["personality".to_string()])
        });
    }
    if !has("CAP_SYS_ADMIN") {
        // clone's flags are its first argument, except on s390 where they are the second.
        let index = if arch == "s390x" { 1 } else { 0 };
        rules.push(oci::Syscall {
            args: vec![oci::SyscallArg {
                value_two: Some(0),
                ..arg(index, CLONE_NS_FLAGS, "SCMP_CMP_MASKED_EQ")
            }],
            ..allow(["clone".to_string()])
        });
        // clone3's flags are in memory seccomp cannot read: ENOSYS makes libcs fall back to clone.
        rules.push(oci::Syscall {
            names: vec!["clone3".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(ENOSYS),
            ..Default::default()
        });
    }
    oci::Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(EPERM),
        architectures: architectures(arch),
        syscalls: rules,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::spec::DEFAULT_CAPS;

    fn names(p: &oci::Seccomp) -> Vec<&str> {
        p.syscalls
            .iter()
            .filter(|r| r.action == "SCMP_ACT_ALLOW" && r.args.is_empty())
            .flat_map(|r| r.names.iter().map(|s| s.as_str()))
            .collect()
    }

    #[test]
    fn default_caps_get_the_base_and_a_restricted_clone() {
        let caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        let p = default_profile("amd64", &caps);
        let n = names(&p);
        assert!(n.contains(&"read") && n.contains(&"arch_prctl") && n.contains(&"chroot"));
        assert!(!n.contains(&"mount") && !n.contains(&"unshare") && !n.contains(&"reboot"));
        assert!(!n.contains(&"cacheflush"), "arm-only calls stay out on amd64");
        let clone = p.syscalls.iter().find(|r| r.names == ["clone"]).unwrap();
        assert_eq!(clone.args[0].op, "SCMP_CMP_MASKED_EQ");
        let clone3 = p.syscalls.iter().find(|r| r.names == ["clone3"]).unwrap();
        assert_eq!(clone3.errno_ret, Some(38));
        assert_eq!(p.default_errno_ret, Some(1));
        // No name twice in the base list.
        let mut base: Vec<&str> = BASE.split_whitespace().collect();
        let len = base.len();
        base.sort();
        base.dedup();
        assert_eq!(base.len(), len);
    }

    #[test]
    fn sys_admin_unlocks_mount_and_free_clone() {
        let caps = vec!["CAP_SYS_ADMIN".to_string()];
        let p = default_profile("arm64", &caps);
        let n = names(&p);
        assert!(n.contains(&"mount") && n.contains(&"clone") && n.contains(&"cacheflush"));
        assert!(!p
            .syscalls
            .iter()
            .any(|r| r.names == ["clone3"] && r.action != "SCMP_ACT_ALLOW"));
        assert_eq!(p.architectures, vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    }

    /// The profile compiles to a BPF program with libseccomp (every name known, by libseccomp or
    /// berth's table of newer calls).
    #[test]
    fn the_profile_compiles() {
        let caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        let p = default_profile("amd64", &caps);
        let prog = berth_seccomp::compile(&p).unwrap();
        assert!(prog.len() > 100, "{} instructions", prog.len());
    }
}

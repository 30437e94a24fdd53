//! System calls newer than some libseccomp releases know, with their x86_64 numbers. A profile that
//! names one of them (docker's default profile does) gets its rule by number on the native
//! architecture instead of an "unknown syscall" error; a name in neither libseccomp nor this table is
//! a real error in the profile.

/// (name, x86_64 number), from the kernel's syscall_64.tbl (the numbers are shared by the generic
/// table from 424 on).
pub const NEWER: &[(&str, i32)] = &[
    ("pidfd_send_signal", 424),
    ("io_uring_setup", 425),
    ("io_uring_enter", 426),
    ("io_uring_register", 427),
    ("open_tree", 428),
    ("move_mount", 429),
    ("fsopen", 430),
    ("fsconfig", 431),
    ("fsmount", 432),
    ("fspick", 433),
    ("pidfd_open", 434),
    ("clone3", 435),
    ("close_range", 436),
    ("openat2", 437),
    ("pidfd_getfd", 438),
    ("faccessat2", 439),
    ("process_madvise", 440),
    ("epoll_pwait2", 441),
    ("mount_setattr", 442),
    ("quotactl_fd", 443),
    ("landlock_create_ruleset", 444),
    ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446),
    ("memfd_secret", 447),
    ("process_mrelease", 448),
    ("futex_waitv", 449),
    ("set_mempolicy_home_node", 450),
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("statmount", 457),
    ("listmount", 458),
    ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
];

/// The native (x86_64) number of a syscall from the table.
pub fn number(name: &str) -> Option<i32> {
    if cfg!(target_arch = "x86_64") {
        NEWER.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
    } else {
        None
    }
}

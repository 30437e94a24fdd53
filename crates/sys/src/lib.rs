//! Safe wrappers over the Linux system calls berth needs that neither `nix` nor the standard library
//! offer safely. This is the only crate of the workspace allowed to contain `unsafe`; every block carries
//! a `// SAFETY:` comment. The wrappers hold no policy and know nothing of OCI types: they turn errno into
//! `io::Error` and otherwise do exactly the call they are named after.
#![allow(unsafe_code)]

pub mod bpf;
pub mod caps;
pub mod fd;
pub mod fs;
pub mod process;
pub mod seccomp;
pub mod term;

pub use fd::{close_range_from, recv_fd, send_fd};
pub use fs::{openat2_in_root, ResolveFlags};
pub use process::{
    clone3, exit_immediately, fork, is_single_threaded, pidfd_open, pidfd_send_signal, prlimit,
    setdomainname, Forked,
};

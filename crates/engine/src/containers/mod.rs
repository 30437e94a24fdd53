//! Containers through the engine (issue 5, in progress): the OCI spec composed from an image config
//! and docker's `Config`/`HostConfig` (`spec.rs`), with berth's default seccomp profile (`seccomp.rs`).

pub mod seccomp;
pub mod spec;

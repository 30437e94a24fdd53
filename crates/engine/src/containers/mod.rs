//! Containers through the engine (issue 5, in progress): the OCI spec composed from an image config
//! and docker's `Config`/`HostConfig` (`spec.rs`).

pub mod spec;

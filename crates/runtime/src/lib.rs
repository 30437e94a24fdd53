//! berth's OCI runtime: config.json -> a validated [`plan::Plan`] (pure data) -> a container created
//! through a single clone into its namespaces. Synchronous, no async runtime: the process that clones
//! into namespaces must stay single-threaded.

pub mod cgroup;
pub mod container;
pub mod defaults;
pub mod features;
pub mod hooks;
pub mod init;
pub mod paths;
pub mod plan;
pub mod procsetup;
pub mod rootfs;
pub mod seccomp_listener;
pub mod state;
pub mod sync;

/// An error with all its causes, joined by ": " (what the CLI prints and the init sends its parent).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.ends_with(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

/// A warning that does not stop the verb (a failed poststart or poststop hook).
pub fn warn(e: &dyn std::error::Error) {
    eprintln!("berth-runtime: warning: {}", error_chain(e));
}

//! Handing the seccomp notification descriptor to the listener named in `linux.seccomp.listenerPath`:
//! the OCI "container process state" document with the descriptor attached (SCM_RIGHTS), sent by the
//! runtime (not the container, which cannot reach host paths).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use serde_json::json;

/// Connects to `listener_path` and sends the state and the descriptor.
pub fn forward(
    listener_path: &str,
    metadata: Option<&str>,
    pid: i32,
    state: serde_json::Value,
    fd: &OwnedFd,
) -> io::Result<()> {
    let doc = json!({
        "ociVersion": berth_spec::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata.unwrap_or(""),
        "state": state,
    });
    let conn = UnixStream::connect(listener_path)?;
    berth_sys::send_fd(conn.as_fd(), doc.to_string().as_bytes(), fd.as_fd())
}

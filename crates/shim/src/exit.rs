//! How the process ended, as the EXIT JSON of PROTOCOL.md, and the other JSON lines the shim writes
//! (the sync line, STATUS).

use crate::json;

/// The end of the container's init or of the exec'd process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit status, or 128 + signal.
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// RFC3339Nano, UTC.
    pub finished_at: String,
    /// Set when the process never started.
    pub error: Option<String>,
    /// The kernel's OOM killer struck inside the container.
    pub oom_killed: bool,
}

impl Exit {
    /// From a raw wait status (`waitpid`).
    pub fn from_wait_status(status: i32, finished_at: String) -> Exit {
        let (exit_code, signal) = if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            (128 + sig, Some(sig))
        } else {
            (libc::WEXITSTATUS(status), None)
        };
        Exit {
            exit_code,
            signal,
            finished_at,
            error: None,
            oom_killed: false,
        }
    }

    /// A process that never started: dockerd's exit codes for start failures (127 for a command not
    /// found, 126 for one that cannot be run, 128 otherwise).
    pub fn never_started(error: String, finished_at: String) -> Exit {
        let lower = error.to_ascii_lowercase();
        let exit_code = if lower.contains("permission denied") {
            126
        } else if lower.contains("executable file not found")
            || lower.contains("no such file or directory")
            || lower.contains("not a directory")
        {
            127
        } else {
            128
        };
        Exit {
            exit_code,
            signal: None,
            finished_at,
            error: Some(error),
            oom_killed: false,
        }
    }

    /// `{"exit_code":N,"signal":S|null,"oom_killed":false,"finished_at":"..."[,"error":"..."]}`
    pub fn to_json(&self) -> String {
        let signal = self.signal.map_or("null".to_string(), |s| s.to_string());
        let mut out = format!(
            "{{\"exit_code\":{},\"signal\":{signal},\"oom_killed\":{},\"finished_at\":{}",
            self.exit_code,
            self.oom_killed,
            json::string(&self.finished_at)
        );
        if let Some(e) = &self.error {
            out.push_str(",\"error\":");
            out.push_str(&json::string(e));
        }
        out.push('}');
        out
    }
}

/// The process's state for STATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Exited,
}

/// `{"state":"created|running|exited","pid":N[,"exit":EXIT]}`
pub fn status_json(state: State, pid: i32, exit: Option<&Exit>) -> String {
    let name = match state {
        State::Created => "created",
        State::Running => "running",
        State::Exited => "exited",
    };
    match exit {
        Some(x) => format!("{{\"state\":\"{name}\",\"pid\":{pid},\"exit\":{}}}", x.to_json()),
        None => format!("{{\"state\":\"{name}\",\"pid\":{pid}}}"),
    }
}

/// The sync line: `{"ok":true,"shim_pid":N,"pid":M}` or `{"ok":false,"error":"..."}`.
pub fn sync_line(result: &Result<(i32, i32), String>) -> String {
    match result {
        Ok((shim, pid)) => format!("{{\"ok\":true,\"shim_pid\":{shim},\"pid\":{pid}}}\n"),
        Err(e) => format!("{{\"ok\":false,\"error\":{}}}\n", json::string(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-25T10:00:00.123456789Z";

    #[test]
    fn exit_codes_from_wait_statuses() {
        // Exited with 3: status 3 << 8. Killed by 9: status 9. Killed by SIGRTMIN+2 (36).
        let x = Exit::from_wait_status(3 << 8, T.into());
        assert_eq!((x.exit_code, x.signal), (3, None));
        let x = Exit::from_wait_status(9, T.into());
        assert_eq!((x.exit_code, x.signal), (137, Some(9)));
        let x = Exit::from_wait_status(36 | 0x80, T.into());
        assert_eq!((x.exit_code, x.signal), (164, Some(36)));
    }

    #[test]
    fn exit_json() {
        let x = Exit::from_wait_status(9, T.into());
        assert_eq!(
            x.to_json(),
            format!(r#"{{"exit_code":137,"signal":9,"oom_killed":false,"finished_at":"{T}"}}"#)
        );
        let x = Exit::from_wait_status(0, T.into());
        assert!(x.to_json().contains(r#""exit_code":0,"signal":null,"#));
        let x = Exit::never_started(
            "exec: \"nope\": executable file not found in $PATH".into(),
            T.into(),
        );
        assert_eq!(
            x.to_json(),
            format!(
                r#"{{"exit_code":127,"signal":null,"oom_killed":false,"finished_at":"{T}","error":"exec: \"nope\": executable file not found in $PATH"}}"#
            )
        );
        assert_eq!(
            Exit::never_started("open /x: permission denied".into(), T.into()).exit_code,
            126
        );
        assert_eq!(
            Exit::never_started("something else".into(), T.into()).exit_code,
            128
        );
    }

    #[test]
    fn status_and_sync_lines() {
        assert_eq!(
            status_json(State::Created, 42, None),
            r#"{"state":"created","pid":42}"#
        );
        let x = Exit::from_wait_status(1 << 8, T.into());
        assert_eq!(
            status_json(State::Exited, 42, Some(&x)),
            format!(r#"{{"state":"exited","pid":42,"exit":{}}}"#, x.to_json())
        );
        assert_eq!(
            sync_line(&Ok((10, 11))),
            "{\"ok\":true,\"shim_pid\":10,\"pid\":11}\n"
        );
        assert_eq!(
            sync_line(&Err("bad \"x\"".into())),
            "{\"ok\":false,\"error\":\"bad \\\"x\\\"\"}\n"
        );
    }
}

//! OCI hooks: a program run with the container's state on its standard input, its own args and env,
//! and an optional timeout in seconds (killed when it runs over).

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_spec::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook #{index} {path}: start")]
    Spawn {
        kind: &'static str,
        index: usize,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{kind} hook #{index} {path}: timed out after {secs} s")]
    Timeout {
        kind: &'static str,
        index: usize,
        path: String,
        secs: i64,
    },
    #[error("{kind} hook #{index} {path}: {status}, stderr: {stderr}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        status: String,
        stderr: String,
    },
    #[error("{kind} hook #{index} {path}: wait")]
    Wait {
        kind: &'static str,
        index: usize,
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Runs `hooks` in order, stopping at the first failure.
pub fn run_all(kind: &'static str, hooks: &[Hook], state_json: &str) -> Result<(), HookError> {
    for (index, h) in hooks.iter().enumerate() {
        run_one(kind, index, h, state_json)?;
    }
    Ok(())
}

/// Runs every hook even when some fail (poststart, poststop); returns the failures.
pub fn run_all_lenient(kind: &'static str, hooks: &[Hook], state_json: &str) -> Vec<HookError> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(i, h)| run_one(kind, i, h, state_json).err())
        .collect()
}

fn run_one(kind: &'static str, index: usize, h: &Hook, state_json: &str) -> Result<(), HookError> {
    let path = h.path.clone();
    let mut cmd = Command::new(&h.path);
    if let Some((argv0, rest)) = h.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind,
        index,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error (EPIPE).
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = h
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(source) => {
                return Err(HookError::Wait {
                    kind,
                    index,
                    path,
                    source,
                })
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                kind,
                index,
                path,
                secs: h.timeout.unwrap_or(0),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    Err(HookError::Failed {
        kind,
        index,
        path,
        status: status.to_string(),
        stderr: stderr.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(args: &[&str], timeout: Option<i64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["X=1".into()],
            timeout,
        }
    }

    #[test]
    fn state_reaches_stdin_and_failures_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!("cat > {} && test \"$X\" = 1", out.display());
        run_all(
            "prestart",
            &[hook(&["sh", "-c", &script], None)],
            "{\"id\":\"c\"}",
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"c\"}");
        let e = run_all(
            "prestart",
            &[hook(&["sh", "-c", "echo oops >&2; exit 3"], None)],
            "{}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("prestart hook #0") && e.contains("exit status: 3") && e.contains("oops"),
            "{e}"
        );
    }

    #[test]
    fn timeouts_kill_the_hook() {
        let e = run_all("poststart", &[hook(&["sh", "-c", "sleep 5"], Some(1))], "{}").unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }), "{e}");
    }

    #[test]
    fn lenient_runs_everything() {
        let errs = run_all_lenient(
            "poststop",
            &[
                hook(&["sh", "-c", "exit 1"], None),
                hook(&["sh", "-c", "exit 0"], None),
                hook(&["sh", "-c", "exit 2"], None),
            ],
            "{}",
        );
        assert_eq!(errs.len(), 2);
    }
}

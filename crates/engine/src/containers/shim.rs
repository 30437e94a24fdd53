//! berthd's side of the berth-shim protocol (`crates/shim/PROTOCOL.md`): spawning a shim, and the
//! one-line requests on its socket (START, ATTACH, RESIZE, KILL, STATUS, WAIT).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// How a shim is started.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub shim: PathBuf,
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    pub id: String,
    pub dir: PathBuf,
    pub mode: Mode,
    pub tty: bool,
    pub stdin: bool,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Container {
        bundle: PathBuf,
        log: PathBuf,
        log_max_size: Option<u64>,
        log_max_files: Option<u32>,
        unmount: Option<PathBuf>,
    },
    Exec {
        exec_id: String,
        process: PathBuf,
    },
}

/// The sync line a shim writes once it is set up.
#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    #[serde(default)]
    pub ok: bool,
    #[serde(default)]
    pub shim_pid: i32,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub error: String,
}

/// How a process ended, as a shim records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    pub exit_code: i64,
    #[serde(default)]
    pub signal: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("start berth-shim {0}")]
    Spawn(PathBuf, #[source] std::io::Error),
    #[error("berth-shim gave no answer (see {0})")]
    NoAnswer(PathBuf),
    #[error("{0}")]
    Failed(String),
    #[error("talk to berth-shim at {0}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("berth-shim at {0} answered {1:?}")]
    Refused(PathBuf, String),
}

impl Spawn {
    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--runtime".into(),
            self.runtime.display().to_string(),
            "--runtime-root".into(),
            self.runtime_root.display().to_string(),
            "--id".into(),
            self.id.clone(),
            "--dir".into(),
            self.dir.display().to_string(),
        ];
        match &self.mode {
            Mode::Container {
                bundle,
                log,
                log_max_size,
                log_max_files,
                unmount,
            } => {
                a.extend(["--bundle".into(), bundle.display().to_string()]);
                a.extend(["--log".into(), log.display().to_string()]);
                if let Some(s) = log_max_size {
                    a.extend(["--log-max-size".into(), s.to_string()]);
                }
                if let Some(n) = log_max_files {
                    a.extend(["--log-max-files".into(), n.to_string()]);
                }
                if let Some(u) = unmount {
                    a.extend(["--unmount".into(), u.display().to_string()]);
                }
            }
            Mode::Exec { exec_id, process } => {
                a.extend(["--exec".into(), exec_id.clone()]);
                a.extend(["--process".into(), process.display().to_string()]);
            }
        }
        if self.tty {
            a.push("--tty".into());
        }
        if self.stdin {
            a.push("--stdin".into());
        }
        a
    }

    /// Starts the shim and waits for its sync line: in container mode the container is created
    /// and waits for START.
    pub async fn run(&self) -> Result<Ready, ShimError> {
        let mut child = tokio::process::Command::new(&self.shim)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ShimError::Spawn(self.shim.clone(), e))?;
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut out).await;
        }
        let _ = child.wait().await;
        let line = out.lines().next().unwrap_or("");
        let ready: Ready =
            serde_json::from_str(line).map_err(|_| ShimError::NoAnswer(self.dir.join("shim.log")))?;
        if !ready.ok {
            return Err(ShimError::Failed(ready.error));
        }
        Ok(ready)
    }
}

/// A shim's socket.
#[derive(Debug, Clone)]
pub struct Conn {
    pub sock: PathBuf,
}

impl Conn {
    pub fn new(sock: &Path) -> Conn {
        Conn {
            sock: sock.to_path_buf(),
        }
    }

    fn io(&self, e: std::io::Error) -> ShimError {
        ShimError::Io(self.sock.clone(), e)
    }

    /// Connects to the socket; a path too long for `sun_path` is reached through
    /// `/proc/self/fd/N/NAME` of its directory (as the shim binds it).
    async fn connect(&self) -> Result<UnixStream, ShimError> {
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        if self.sock.as_os_str().as_bytes().len() < 100 {
            return UnixStream::connect(&self.sock).await.map_err(|e| self.io(e));
        }
        let (Some(dir), Some(name)) = (self.sock.parent(), self.sock.file_name()) else {
            return UnixStream::connect(&self.sock).await.map_err(|e| self.io(e));
        };
        let d = std::fs::File::open(dir).map_err(|e| self.io(e))?;
        let short = format!("/proc/self/fd/{}/{}", d.as_raw_fd(), name.to_string_lossy());
        let s = UnixStream::connect(&short).await.map_err(|e| self.io(e));
        drop(d);
        s
    }

    async fn open(&self, line: &str) -> Result<BufReader<UnixStream>, ShimError> {
        let mut s = self.connect().await?;
        s.write_all(line.as_bytes()).await.map_err(|e| self.io(e))?;
        s.write_all(b"\n").await.map_err(|e| self.io(e))?;
        Ok(BufReader::new(s))
    }

    /// One request, one line back.
    async fn ask(&self, line: &str) -> Result<String, ShimError> {
        let mut r = self.open(line).await?;
        let mut answer = String::new();
        r.read_line(&mut answer).await.map_err(|e| self.io(e))?;
        Ok(answer.trim_end().to_string())
    }

    async fn ok(&self, line: &str) -> Result<String, ShimError> {
        let a = self.ask(line).await?;
        if let Some(rest) = a.strip_prefix("OK") {
            return Ok(rest.trim().to_string());
        }
        match a.strip_prefix("ERR ") {
            Some(m) => Err(ShimError::Failed(m.to_string())),
            None => Err(ShimError::Refused(self.sock.clone(), a)),
        }
    }

    /// Starts the process; returns its PID.
    pub async fn start(&self) -> Result<i32, ShimError> {
        let pid = self.ok("START").await?;
        Ok(pid.parse().unwrap_or(0))
    }

    pub async fn resize(&self, rows: u16, cols: u16) -> Result<(), ShimError> {
        self.ok(&format!("RESIZE {rows} {cols}")).await.map(drop)
    }

    pub async fn kill(&self, signal: i32, all: bool) -> Result<(), ShimError> {
        let line = if all {
            format!("KILL {signal} all")
        } else {
            format!("KILL {signal}")
        };
        self.ok(&line).await.map(drop)
    }

    /// An attached connection: frames from the shim, stdin frames to it.
    pub async fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> Result<UnixStream, ShimError> {
        let mut what = Vec::new();
        for (on, name) in [(stdin, "stdin"), (stdout, "stdout"), (stderr, "stderr")] {
            if on {
                what.push(name);
            }
        }
        let mut s = self.connect().await?;
        let line = format!("ATTACH {}\n", what.join(" "));
        s.write_all(line.as_bytes()).await.map_err(|e| self.io(e))?;
        // The answer is read a byte at a time: frames may follow it at once and must stay unread.
        let mut answer = Vec::new();
        let mut b = [0u8; 1];
        while answer.len() < 256 {
            match s.read(&mut b).await.map_err(|e| self.io(e))? {
                0 => break,
                _ if b[0] == b'\n' => break,
                _ => answer.push(b[0]),
            }
        }
        if answer != b"OK" {
            return Err(ShimError::Refused(
                self.sock.clone(),
                String::from_utf8_lossy(&answer).into_owned(),
            ));
        }
        Ok(s)
    }

    /// Waits for the end. `Ok(None)`: the shim went away without telling (killed).
    pub async fn wait(&self) -> Result<Option<Exit>, ShimError> {
        let mut r = self.open("WAIT").await?;
        let mut line = String::new();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => Ok(None),
            Ok(_) => Ok(serde_json::from_str(line.trim()).ok()),
        }
    }

    /// Whether a shim answers on this socket.
    pub async fn alive(&self) -> bool {
        self.ask("STATUS").await.is_ok_and(|s| !s.is_empty())
    }
}

/// Reads an exit file the shim left (`exit.json`).
pub fn read_exit(path: &Path) -> Option<Exit> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

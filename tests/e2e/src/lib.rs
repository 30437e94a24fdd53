//! The harness of the root-tier end-to-end tests: a busybox bundle with the static `probe` inside,
//! a private state root per test, the runtime driven through its command line with a timeout, and a
//! guard that removes the container, its cgroup and the bundle even when the test fails.
//!
//! Which runtime: `E2E_RUNTIME` (a path, or `runc`/`crun` from PATH); by default the workspace's
//! `berth-runtime`, found by [`built`] (next to the test binary, so `CARGO_TARGET_DIR` is honoured,
//! else in `target/debug`). The tests run only with `BERTH_E2E=1` and as root; otherwise each
//! prints why it is skipped and passes.

pub mod console;
pub mod daemon;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The workspace root (two levels above this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

/// The directory of the binaries built together with the tests: a test executable is
/// `<target>/<profile>/deps/NAME-HASH`, so this follows `CARGO_TARGET_DIR`.
pub fn bin_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    (deps.file_name()? == "deps").then(|| deps.parent().map(Path::to_path_buf))?
}

/// A binary of the workspace (`profile` "debug" or "release"): where this test binary was built,
/// else in the workspace's `target/`.
pub fn built_in(profile: &str, name: &str) -> PathBuf {
    let near = bin_dir().and_then(|d| Some(d.parent()?.join(profile).join(name)));
    match near {
        Some(p) if p.is_file() => p,
        _ => workspace().join("target").join(profile).join(name),
    }
}

/// A debug binary of the workspace (see [`built_in`]).
pub fn built(name: &str) -> PathBuf {
    built_in("debug", name)
}

/// The runtime under test and the probe, when the tests can run here.
#[derive(Debug, Clone)]
pub struct Env {
    pub runtime: PathBuf,
    pub probe: PathBuf,
    /// `berth`, `runc` or `crun`: some checks only hold for berth-runtime's stricter rules.
    pub kind: String,
}

impl Env {
    pub fn is_berth(&self) -> bool {
        self.kind == "berth"
    }
}

/// `name` found on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The environment, or `None` (with the reason printed) when the tests cannot run.
pub fn env() -> Option<Env> {
    if std::env::var("BERTH_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: set BERTH_E2E=1 to run the root end-to-end tests");
        return None;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the end-to-end tests need root");
        return None;
    }
    let given = std::env::var("E2E_RUNTIME").unwrap_or_default();
    let runtime = match given.as_str() {
        "" => built("berth-runtime"),
        g if g.contains('/') => PathBuf::from(g),
        g => which(g)?,
    };
    let probe = std::env::var("E2E_PROBE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| built_in("release", "probe"));
    for (what, p) in [("runtime", &runtime), ("probe", &probe)] {
        if !p.is_file() {
            eprintln!("skipped: {what} {} not found (build it first)", p.display());
            return None;
        }
    }
    if !Path::new("/bin/busybox").is_file() {
        eprintln!("skipped: /bin/busybox not found (apt-get install busybox-static)");
        return None;
    }
    let name = runtime
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = if name.contains("runc") {
        "runc"
    } else if name.contains("crun") {
        "crun"
    } else {
        "berth"
    };
    Some(Env {
        runtime,
        probe,
        kind: kind.to_string(),
    })
}

/// berth-shim (`E2E_SHIM`, else [`built`]), or `None` with the reason printed.
pub fn shim() -> Option<PathBuf> {
    let p = std::env::var("E2E_SHIM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| built("berth-shim"));
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "skipped: berth-shim {} not found (cargo build -p berth-shim)",
            p.display()
        );
        None
    }
}

/// Whether the host runs pure cgroup v2.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// What a runtime command did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The value of `key=` in the probe's output.
    pub fn get(&self, key: &str) -> Option<String> {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    }

    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "command failed: stdout={:?} stderr={:?}",
            self.stdout, self.stderr
        );
        self
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test container: bundle, state root, id. Dropping it force-deletes the container and removes
/// everything the test made.
pub struct Container {
    pub env: Env,
    pub id: String,
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub root: PathBuf,
    pub config: Value,
}

impl Container {
    /// A bundle whose process runs the probe with `args`.
    pub fn new(env: &Env, args: &[&str]) -> Container {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("e2e-{}-{n}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/berth-e2e-{id}"));
        let _ = fs::remove_dir_all(&dir);
        let bundle = dir.join("bundle");
        let root = dir.join("state");
        let rootfs = bundle.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
            fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
        }
        // World-searchable, so a container in a user namespace can reach its rootfs.
        for d in [&dir, &bundle, &rootfs] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        fs::copy(&env.probe, rootfs.join("bin/probe")).expect("copy probe");
        for l in [
            "sh", "ls", "cat", "sleep", "echo", "id", "hostname", "readlink", "ps", "true", "mkdir", "touch",
        ] {
            symlink("busybox", rootfs.join("bin").join(l)).expect("link");
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .expect("passwd");
        fs::write(rootfs.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").expect("group");
        let spec = Command::new(&env.runtime)
            .arg("spec")
            .current_dir(&bundle)
            .output()
            .expect("run spec");
        assert!(
            spec.status.success(),
            "spec failed: {}",
            String::from_utf8_lossy(&spec.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&fs::read(bundle.join("config.json")).expect("config")).expect("json");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(std::iter::once("/bin/probe")
            .chain(args.iter().copied())
            .collect::<Vec<_>>());
        config["root"]["readonly"] = json!(false);
        // A cgroup of its own per test, so parallel tests never share a parent.
        config["linux"]["cgroupsPath"] = json!(format!("/berth-e2e-{id}"));
        let c = Container {
            env: env.clone(),
            id,
            dir,
            bundle,
            root,
            config,
        };
        c.write_config();
        c
    }

    pub fn write_config(&self) {
        fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("json"),
        )
        .expect("write config");
    }

    /// Runs `<runtime> --root R args...` (in the bundle directory), its output in files so that a
    /// container inheriting them cannot hold the test up; killed after `timeout`.
    pub fn rt_timeout(&self, args: &[&str], timeout: Duration) -> Out {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.dir.join(format!("out.{n}")),
            self.dir.join(format!("err.{n}")),
        );
        let mut child = Command::new(&self.env.runtime)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.bundle)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&o).expect("out file"))
            .stderr(fs::File::create(&e).expect("err file"))
            .spawn()
            .expect("spawn runtime");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} {args:?} timed out", self.env.runtime.display());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Out {
            code,
            stdout: fs::read_to_string(&o).unwrap_or_default(),
            stderr: fs::read_to_string(&e).unwrap_or_default(),
        }
    }

    /// Starts `<runtime> --root R args...` without waiting (output discarded).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(&self.env.runtime)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn runtime")
    }

    pub fn rt(&self, args: &[&str]) -> Out {
        self.rt_timeout(args, Duration::from_secs(30))
    }

    /// `run` in the foreground: the probe's output and the exit status.
    pub fn run(&self) -> Out {
        self.rt(&["run", "--bundle", self.bundle.to_str().unwrap_or("."), &self.id])
    }

    pub fn create(&self) -> Out {
        self.rt(&[
            "create",
            "--bundle",
            self.bundle.to_str().unwrap_or("."),
            &self.id,
        ])
    }

    pub fn state(&self) -> Value {
        let o = self.rt(&["state", &self.id]);
        serde_json::from_str(&o.stdout).unwrap_or(Value::Null)
    }

    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap_or("").to_string()
    }

    /// The container's cgroup directories that exist on the host now.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let name = format!("berth-e2e-{}", self.id);
        let mut out = Vec::new();
        if cgroup_v2() {
            out.push(PathBuf::from("/sys/fs/cgroup").join(&name));
        } else if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                out.push(e.path().join(&name));
            }
        }
        out.retain(|p| p.exists());
        out
    }

    /// Whether the state root still has an entry for the container.
    pub fn state_left(&self) -> bool {
        self.root.join(&self.id).exists()
    }

    /// Waits until the container's status is `want` (or the time is up); returns the last status.
    pub fn wait_status(&self, want: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status();
            if s == want || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.rt_timeout(&["delete", "--force", &self.id], Duration::from_secs(20));
        // The cgroup of a runtime that failed half-way: kill what is in it, then remove it.
        for d in self.cgroup_dirs() {
            if let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            for _ in 0..100 {
                if fs::remove_dir(&d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

//! berthd end to end: a real registry (Debian's docker-registry) on 127.0.0.1, berthd on a private
//! socket and data root, driven by the unmodified docker CLI (/usr/local/bin/docker, or E2E_DOCKER)
//! and by raw API requests: import, push, pull (with the lines docker users know), tag, rmi,
//! save/load, errors, a daemon killed with SIGKILL in the middle of a pull, two daemons side by side.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::{which, workspace};

struct Tools {
    berthd: PathBuf,
    registry: PathBuf,
    docker: PathBuf,
}

fn tools() -> Option<Tools> {
    if std::env::var("BERTH_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: set BERTH_E2E=1 to run the root end-to-end tests");
        return None;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the end-to-end tests need root");
        return None;
    }
    let berthd = workspace().join("target/debug/berthd");
    if !berthd.is_file() {
        eprintln!(
            "skipped: {} not found (cargo build -p berth-daemon)",
            berthd.display()
        );
        return None;
    }
    let Some(registry) = which("docker-registry") else {
        eprintln!("skipped: docker-registry not found (apt-get install docker-registry)");
        return None;
    };
    let docker = std::env::var("E2E_DOCKER")
        .map(PathBuf::from)
        .ok()
        .or_else(|| Some(PathBuf::from("/usr/local/bin/docker")).filter(|p| p.is_file()))
        .or_else(|| which("docker"))
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/docker"));
    if !docker.is_file() {
        eprintln!("skipped: no docker CLI at {} (set E2E_DOCKER)", docker.display());
        return None;
    }
    if !Path::new("/bin/busybox").is_file() {
        eprintln!("skipped: /bin/busybox not found (apt-get install busybox-static)");
        return None;
    }
    Some(Tools {
        berthd,
        registry,
        docker,
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills and reaps a child it owns (by PID, never by name).
struct Proc(Option<Child>);

impl Proc {
    fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A registry on 127.0.0.1 with its own storage, removed on drop.
struct Registry {
    addr: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

fn registry(t: &Tools) -> Registry {
    registry_with(t, "")
}

/// A registry; `auth` is extra configuration (e.g. an htpasswd section).
fn registry_with(t: &Tools, auth: &str) -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(&t.registry)
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let r = Registry {
        addr: addr.clone(),
        _proc: Proc(Some(child)),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the registry did not start on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    r
}

/// berthd with a private socket, data root and exec root.
struct Daemon {
    sock: PathBuf,
    dir: PathBuf,
    proc: Proc,
    berthd: PathBuf,
}

impl Daemon {
    fn start(t: &Tools, dir: &Path) -> Daemon {
        let mut d = Daemon {
            sock: dir.join("berth.sock"),
            dir: dir.to_path_buf(),
            proc: Proc(None),
            berthd: t.berthd.clone(),
        };
        d.restart();
        d
    }

    fn restart(&mut self) {
        self.proc.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("berthd.log"))
            .unwrap();
        let child = Command::new(&self.berthd)
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.proc = Proc(Some(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((code, _)) = api(&self.sock, "GET", "/_ping", None) {
                if code == 200 {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not answer on {}",
                self.sock.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.proc.0.as_ref().map(|c| c.id()).unwrap_or(0)
    }
}

/// A raw API request over the unix socket (HTTP/1.0 style: the answer ends with the connection).
fn api(sock: &Path, method: &str, path: &str, body: Option<&[u8]>) -> std::io::Result<(u16, String)> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// A client (docker or berth) against daemon `d`.
fn run_cli(bin: &Path, d: &Daemon, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("BERTH_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(t: &Tools, d: &Daemon, args: &[&str]) -> String {
    ok_with(&t.docker, d, args)
}

fn ok_with(bin: &Path, d: &Daemon, args: &[&str]) -> String {
    let o = run_cli(bin, d, args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{} {args:?} failed: {}\n{out}\n{}",
        bin.display(),
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn fails(t: &Tools, d: &Daemon, args: &[&str]) -> String {
    fails_with(&t.docker, d, args)
}

fn fails_with(bin: &Path, d: &Daemon, args: &[&str]) -> String {
    let o = run_cli(bin, d, args);
    assert!(!o.status.success(), "{} {args:?} should fail", bin.display());
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A busybox root filesystem as a tar file, plus `extra` bytes of incompressible data.
fn rootfs_tar(dir: &Path, extra: usize) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    if extra > 0 {
        let mut x: u64 = 0x2545F4914F6CDD1D;
        let data: Vec<u8> = (0..extra)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(root.join("noise"), data).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

#[test]
fn docker_cli_push_pull_tag_rmi_save_load_against_berthd() {
    let Some(t) = tools() else { return };
    let reg = registry(&t);
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&t, dir.path());
    let image = format!("{}/e2e/busybox:1", reg.addr);
    let tar = rootfs_tar(dir.path(), 0);
    let id = ok(&t, &d, &["import", "-m", "e2e", tar.to_str().unwrap(), &image]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = ok(&t, &d, &["push", &image]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/e2e/busybox]",
            reg.addr
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    assert!(out.contains("1: digest: sha256:"), "{out}");
    // Pushing again: the layer is there.
    let out = ok(&t, &d, &["push", &image]);
    assert!(out.contains("Layer already exists"), "{out}");
    ok(&t, &d, &["rmi", &image]);
    assert!(ok(&t, &d, &["images", "-q"]).trim().is_empty());
    // The seeds' pull lines.
    let out = ok(&t, &d, &["pull", &image]);
    for want in [
        "1: Pulling from e2e/busybox",
        "Pulling fs layer",
        "Pull complete",
        "Digest: sha256:",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
    let out = ok(&t, &d, &["pull", &image]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {image}")),
        "{out}"
    );
    // Tag, list, inspect, history.
    ok(&t, &d, &["tag", &image, "local/copy:two"]);
    let out = ok(&t, &d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(out.contains("local/copy:two") && out.contains(&image), "{out}");
    let out = ok(
        &t,
        &d,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Os}} {{index .RepoTags 0}}",
            "local/copy:two",
        ],
    );
    assert!(out.starts_with("linux "), "{out}");
    let out = ok(&t, &d, &["history", "--no-trunc", "local/copy:two"]);
    assert!(out.contains("e2e"), "{out}");
    let out = ok(&t, &d, &["rmi", "local/copy:two"]);
    assert_eq!(out.trim(), "Untagged: local/copy:two");
    // Save, remove, load.
    let archive = dir.path().join("saved.tar");
    ok(&t, &d, &["save", "-o", archive.to_str().unwrap(), &image]);
    let out = ok(&t, &d, &["rmi", &image]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    let out = ok(&t, &d, &["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {image}")), "{out}");
    // Errors, as dockerd words them.
    let e = fails(&t, &d, &["pull", &format!("{}/e2e/missing:1", reg.addr)]);
    assert!(e.contains("not found"), "{e}");
    let e = fails(&t, &d, &["rmi", "nope"]);
    assert!(e.contains("No such image: nope:latest"), "{e}");
    let e = fails(&t, &d, &["pull", "Bad/Name"]);
    assert!(e.contains("invalid reference format"), "{e}");
    let e = fails(&t, &d, &["image", "inspect", "nope"]);
    assert!(e.contains("No such image"), "{e}");
    // Raw API: bad input gets dockerd's codes and a message, and the daemon keeps serving.
    let (code, body) = api(&d.sock, "POST", "/v1.44/auth", Some(b"{not json")).unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    let (code, body) = api(&d.sock, "GET", "/v1.39/_ping", None).unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too old"), "{body}");
    let (code, body) = api(&d.sock, "GET", "/v1.44/images/json?filters=%7Bbogus", None).unwrap();
    assert_eq!(code, 400, "{body}");
    let (code, _) = api(&d.sock, "GET", "/v1.44/images/nope/json", None).unwrap();
    assert_eq!(code, 404);
    let (code, body) = api(&d.sock, "GET", "/v1.44/images/json", None).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains(&image), "{body}");
}

#[test]
fn a_daemon_killed_mid_pull_recovers_and_the_pull_completes() {
    let Some(t) = tools() else { return };
    let reg = registry(&t);
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(&t, dir.path());
    let image = format!("{}/e2e/big:1", reg.addr);
    let tar = rootfs_tar(dir.path(), 16 << 20);
    ok(&t, &d, &["import", tar.to_str().unwrap(), &image]);
    ok(&t, &d, &["push", &image]);
    ok(&t, &d, &["rmi", &image]);
    // Pull in the background; kill the daemon once bytes have arrived.
    let mut pull = Command::new(&t.docker)
        .args(["pull", &image])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ingest = dir.path().join("data/image/content/ingest");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed_mid = false;
    while Instant::now() < deadline {
        let bytes: u64 = std::fs::read_dir(&ingest)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| std::fs::metadata(e.path().join("data")).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        if bytes > 0 {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(d.pid() as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            killed_mid = true;
            break;
        }
        if let Ok(Some(_)) = pull.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = pull.wait();
    assert!(
        killed_mid,
        "the pull finished before the daemon could be killed: nothing was tested"
    );
    d.restart();
    let out = ok(&t, &d, &["pull", &image]);
    assert!(
        out.contains("Status: Downloaded newer image for") || out.contains("Image is up to date"),
        "{out}"
    );
    let out = ok(&t, &d, &["image", "inspect", "-f", "{{.Size}}", &image]);
    let size: u64 = out.trim().parse().unwrap();
    assert!(size > 16 << 20, "{size}");
    // No half-unpacked layer is left behind.
    let tmp = dir.path().join("data/image/snapshots/tmp");
    assert_eq!(std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0), 0);
}

#[test]
fn two_daemons_side_by_side() {
    let Some(t) = tools() else { return };
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = Daemon::start(&t, a_dir.path());
    let b = Daemon::start(&t, b_dir.path());
    let tar = rootfs_tar(a_dir.path(), 0);
    ok(&t, &a, &["import", tar.to_str().unwrap(), "only-in-a:1"]);
    assert!(ok(&t, &a, &["images", "-q"]).trim().len() >= 12);
    assert!(ok(&t, &b, &["images", "-q"]).trim().is_empty());
    // A second daemon on the same socket is refused.
    let o = Command::new(&t.berthd)
        .arg("-H")
        .arg(format!("unix://{}", a.sock.display()))
        .arg("--data-root")
        .arg(b_dir.path().join("data2"))
        .arg("--exec-root")
        .arg(b_dir.path().join("exec2"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (code, _) = api(&a.sock, "GET", "/_ping", None).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn basic_auth_login_push_and_pull() {
    let Some(t) = tools() else { return };
    let Some(htpasswd) = which("htpasswd") else {
        eprintln!("skipped: htpasswd not found (apt-get install apache2-utils)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("htpasswd");
    let o = Command::new(htpasswd)
        .args(["-Bbn", "alice", "s3cret"])
        .output()
        .unwrap();
    assert!(o.status.success());
    std::fs::write(&pw, &o.stdout).unwrap();
    let reg = registry_with(
        &t,
        &format!("auth:\n  htpasswd:\n    realm: e2e\n    path: {}\n", pw.display()),
    );
    let d = Daemon::start(&t, dir.path());
    let image = format!("{}/private/app:1", reg.addr);
    let tar = rootfs_tar(dir.path(), 0);
    ok(&t, &d, &["import", tar.to_str().unwrap(), &image]);
    let e = fails(&t, &d, &["push", &image]);
    assert!(e.contains("no basic auth credentials"), "{e}");
    let e = fails(&t, &d, &["login", "-u", "alice", "-p", "wrong", &reg.addr]);
    assert!(e.contains("incorrect username or password"), "{e}");
    let out = ok(&t, &d, &["login", "-u", "alice", "-p", "s3cret", &reg.addr]);
    assert!(out.contains("Login Succeeded"), "{out}");
    let out = ok(&t, &d, &["push", &image]);
    assert!(out.contains("Pushed"), "{out}");
    ok(&t, &d, &["rmi", &image]);
    let out = ok(&t, &d, &["pull", &image]);
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
}

#[test]
fn berth_cli_push_pull_tag_rmi_save_load() {
    let Some(t) = tools() else { return };
    let berth = workspace().join("target/debug/berth");
    if !berth.is_file() {
        eprintln!(
            "skipped: {} not found (cargo build -p berth-cli)",
            berth.display()
        );
        return;
    }
    let reg = registry(&t);
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&t, dir.path());
    let image = format!("{}/e2e/cli:1", reg.addr);
    let tar = rootfs_tar(dir.path(), 0);
    let id = ok_with(&berth, &d, &["import", tar.to_str().unwrap(), &image]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = ok_with(&berth, &d, &["push", &image]);
    assert!(
        out.contains("Pushed") && out.contains("1: digest: sha256:"),
        "{out}"
    );
    ok_with(&berth, &d, &["rmi", &image]);
    let out = ok_with(&berth, &d, &["pull", &image]);
    for want in [
        "1: Pulling from e2e/cli",
        "Pull complete",
        "Digest: sha256:",
        "Status: Downloaded newer image for",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert_eq!(out.lines().last(), Some(image.as_str()), "{out}");
    ok_with(&berth, &d, &["tag", &image, "cli/copy:2"]);
    let out = ok_with(&berth, &d, &["images"]);
    assert!(out.starts_with("REPOSITORY"), "{out}");
    assert!(
        out.contains("cli/copy") && out.contains(&format!("{}/e2e/cli", reg.addr)),
        "{out}"
    );
    // The same store seen through docker.
    let out = ok(&t, &d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(out.contains("cli/copy:2"), "{out}");
    let archive = dir.path().join("cli.tar");
    ok_with(
        &berth,
        &d,
        &["save", "-o", archive.to_str().unwrap(), "cli/copy:2"],
    );
    let out = ok_with(&berth, &d, &["rmi", "cli/copy:2", &image]);
    assert!(
        out.contains("Untagged: cli/copy:2") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    let out = ok_with(&berth, &d, &["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: cli/copy:2"), "{out}");
    let e = fails_with(&berth, &d, &["rmi", "nope"]);
    assert!(e.contains("No such image: nope:latest"), "{e}");
    let e = fails_with(&berth, &d, &["pull", &format!("{}/e2e/missing:1", reg.addr)]);
    assert!(e.contains("not found"), "{e}");
}

/// The Python docker SDK (docker-py) against berthd: pull, tag, push, history, save/load, errors.
#[test]
fn the_python_docker_sdk_works_against_berthd() {
    let Some(t) = tools() else { return };
    let has_sdk = Command::new("python3")
        .args(["-c", "import docker"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has_sdk {
        eprintln!("skipped: the Python docker SDK is not installed (python3 -m pip install docker)");
        return;
    }
    let reg = registry(&t);
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&t, dir.path());
    let tar = rootfs_tar(dir.path(), 0);
    ok(
        &t,
        &d,
        &[
            "import",
            tar.to_str().unwrap(),
            &format!("{}/sdk/base:1", reg.addr),
        ],
    );
    ok(&t, &d, &["push", &format!("{}/sdk/base:1", reg.addr)]);
    ok(&t, &d, &["rmi", &format!("{}/sdk/base:1", reg.addr)]);
    let script = r#"
import sys, docker
sock, reg = sys.argv[1], sys.argv[2]
c = docker.DockerClient(base_url='unix://' + sock)
assert c.ping()
img = c.images.pull(reg + '/sdk/base', tag='1')
assert img.tags == [reg + '/sdk/base:1'], img.tags
assert img.id.startswith('sha256:')
img.tag(reg + '/sdk/copy', 'v2')
lines = list(c.images.push(reg + '/sdk/copy', tag='v2', stream=True, decode=True))
assert any('aux' in l and l['aux']['Tag'] == 'v2' for l in lines), lines
assert c.images.get(reg + '/sdk/copy:v2').history()[0]['Id'] == img.id
data = b''.join(c.images.get(reg + '/sdk/copy:v2').save(named=True))
c.images.remove(reg + '/sdk/copy:v2')
loaded = c.images.load(data)
assert [i.id for i in loaded] == [img.id], loaded
try:
    c.images.get('nope')
    raise SystemExit('expected ImageNotFound')
except docker.errors.ImageNotFound:
    pass
try:
    c.images.pull(reg + '/sdk/missing', tag='1')
    raise SystemExit('expected NotFound')
except docker.errors.NotFound:
    pass
assert c.info()['Images'] >= 1
print('sdk ok')
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&d.sock)
        .arg(&reg.addr)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("sdk ok"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

//! berthd under test: tool discovery, a private registry on 127.0.0.1, a daemon on a private socket,
//! data root and exec root, raw API requests, and CLI runs (docker or berth) against it. Shared by
//! the engine and container end-to-end tests; every process is stopped by its PID on drop.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::which;

pub struct Tools {
    pub berthd: PathBuf,
    pub registry: PathBuf,
    pub docker: PathBuf,
}

pub fn tools() -> Option<Tools> {
    if std::env::var("BERTH_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: set BERTH_E2E=1 to run the root end-to-end tests");
        return None;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the end-to-end tests need root");
        return None;
    }
    let berthd = crate::built_in("debug", "berthd");
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills and reaps a child it owns (by PID, never by name).
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn kill(&mut self) {
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
pub struct Registry {
    pub addr: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

pub fn registry(t: &Tools) -> Registry {
    registry_with(t, "")
}

/// A registry; `auth` is extra configuration (e.g. an htpasswd section).
pub fn registry_with(t: &Tools, auth: &str) -> Registry {
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

/// berthd with a private socket, data root and exec root, and a default bridge and nftables table
/// of its own (`bt<pid><n>`, a private /24), so that daemons of tests running side by side never
/// share a bridge, a subnet or a firewall table. Dropping it removes its bridges, its table and
/// its namespace files.
pub struct Daemon {
    pub sock: PathBuf,
    pub dir: PathBuf,
    pub proc: Proc,
    pub berthd: PathBuf,
    /// The default bridge's and the firewall table's name.
    pub net: String,
    /// The default bridge's gateway address with its prefix (`10.x.y.1/24`).
    pub bip: String,
    /// More berthd flags, for the next (re)start.
    pub args: Vec<String>,
}

static DAEMONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Daemon {
    pub fn start(t: &Tools, dir: &Path) -> Daemon {
        let n = DAEMONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let pid = std::process::id();
        let mut d = Daemon {
            sock: dir.join("berth.sock"),
            dir: dir.to_path_buf(),
            proc: Proc(None),
            berthd: t.berthd.clone(),
            net: format!("bt{}x{n}", pid % 100_000),
            bip: format!("10.{}.{}.1/24", 128 + pid % 100, n % 250),
            args: Vec::new(),
        };
        d.restart();
        d
    }

    /// The default bridge's gateway address (`10.x.y.1`): the host side of containers' default route.
    pub fn gateway(&self) -> &str {
        self.bip.split('/').next().unwrap_or_default()
    }

    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// (Re)starts berthd with `env` added to its environment.
    pub fn restart_with(&mut self, env: &[(&str, &str)]) {
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
            .args([
                "--bridge",
                &self.net,
                "--firewall-table",
                &self.net,
                "--bip",
                &self.bip,
            ])
            // Daemons of tests running side by side: none may guard forwarding against the
            // others' bridges (.ci/run turns IPv4 forwarding on for the suite).
            .arg("--ip-forward=false")
            .args(&self.args)
            .envs(env.iter().copied())
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

    pub fn pid(&self) -> u32 {
        self.proc.0.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The bridges of this daemon's networks, from its records.
    pub fn bridges(&self) -> Vec<String> {
        let mut out = vec![self.net.clone()];
        if let Ok(rd) = std::fs::read_dir(self.dir.join("data/network")) {
            for e in rd.flatten() {
                let Ok(text) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                if let Some(b) = v.get("bridge").and_then(|b| b.as_str()).filter(|b| !b.is_empty()) {
                    if !out.iter().any(|o| o == b) {
                        out.push(b.to_string());
                    }
                }
            }
        }
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.proc.kill();
        let quiet = |cmd: &str, args: &[&str]| {
            let _ = Command::new(cmd)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for b in self.bridges() {
            quiet("ip", &["link", "del", &b]);
        }
        quiet("nft", &["delete", "table", "inet", &self.net]);
        if let Ok(rd) = std::fs::read_dir(self.dir.join("exec/netns")) {
            for e in rd.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// A raw API request over the unix socket (HTTP/1.0 style: the answer ends with the connection).
pub fn api(sock: &Path, method: &str, path: &str, body: Option<&[u8]>) -> std::io::Result<(u16, String)> {
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
pub fn run_cli(bin: &Path, d: &Daemon, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("BERTH_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn ok(t: &Tools, d: &Daemon, args: &[&str]) -> String {
    ok_with(&t.docker, d, args)
}

pub fn ok_with(bin: &Path, d: &Daemon, args: &[&str]) -> String {
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

pub fn fails(t: &Tools, d: &Daemon, args: &[&str]) -> String {
    fails_with(&t.docker, d, args)
}

pub fn fails_with(bin: &Path, d: &Daemon, args: &[&str]) -> String {
    let o = run_cli(bin, d, args);
    assert!(!o.status.success(), "{} {args:?} should fail", bin.display());
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A busybox root filesystem as a tar file, plus `extra` bytes of incompressible data.
pub fn rootfs_tar(dir: &Path, extra: usize) -> PathBuf {
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
    tar_of(&root, &dir.join("rootfs.tar"))
}

/// `root`'s contents as the tar file `tar`.
pub fn tar_of(root: &Path, tar: &Path) -> PathBuf {
    let st = Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-cf")
        .arg(tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of {}", root.display());
    tar.to_path_buf()
}

/// A busybox root filesystem with every applet linked and an /etc/passwd, as a tar file.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("bbroot");
    busybox_root(&root);
    tar_of(&root, &dir.join("bb.tar"))
}

/// Fills `root` with busybox (every applet linked), /etc/passwd and /etc/group.
pub fn busybox_root(root: &Path) {
    for d in ["bin", "etc", "tmp", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// Removes every container of the daemon (force), so no shim or mount outlives a test.
pub struct Cleanup {
    docker: PathBuf,
    host: String,
}

impl Cleanup {
    pub fn new(t: &Tools, d: &Daemon) -> Cleanup {
        Cleanup {
            docker: t.docker.clone(),
            host: format!("unix://{}", d.sock.display()),
        }
    }

    pub fn docker(&self, args: &[&str]) -> String {
        let o = Command::new(&self.docker)
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .stdin(Stdio::null())
            .output();
        o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in self.docker(&["ps", "-aq"]).split_whitespace() {
            self.docker(&["rm", "-f", id]);
        }
    }
}

pub fn code(t: &Tools, d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let o = run_cli(&t.docker, d, args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

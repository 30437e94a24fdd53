//! berth-shim driven as berthd drives it (`crates/shim/PROTOCOL.md`), with the runtime under test
//! (berth-runtime, or runc with `E2E_RUNTIME=runc`): the sync line, ATTACH frames both ways, START,
//! RESIZE, KILL, WAIT, the exit file, the json-file log and its rotation, create failures, exec
//! sessions, and a shim killed under its clients.
//!
//! Every test's shim state directory lives in the test container's directory, which the
//! `Container` guard removes (after `runtime delete --force`); a shim still running at the end of a
//! test is killed by its PID.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_e2e::{env, shim, Container, Env};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

/// The environment and the shim binary, or `None` (skipped, the reason printed).
fn ready() -> Option<(Env, PathBuf)> {
    let e = env()?;
    Some((e, shim()?))
}

/// A container whose process is `sh -c SCRIPT`.
fn container(e: &Env, script: &str) -> Container {
    let mut c = Container::new(e, &[]);
    c.config["process"]["args"] = json!(["sh", "-c", script]);
    c.write_config();
    c
}

/// A started shim; killed by its PID when dropped if it is still there.
struct Shim {
    pid: i32,
    sync: Value,
    dir: PathBuf,
    sock: PathBuf,
}

impl Shim {
    /// Runs berth-shim with the common flags plus `extra`, and reads its sync line.
    fn spawn(bin: &Path, e: &Env, c: &Container, sock: &str, extra: &[&str]) -> Shim {
        let dir = c.dir.join("shim");
        std::fs::create_dir_all(&dir).expect("mkdir shim dir");
        let mut child = Command::new(bin)
            .arg("--runtime")
            .arg(&e.runtime)
            .arg("--runtime-root")
            .arg(&c.root)
            .args(["--id", &c.id, "--dir"])
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn berth-shim");
        let mut out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            let _ = tx.send(s);
        });
        let line = rx.recv_timeout(T).expect("the sync line within 30 s");
        let status = child.wait().expect("wait for the first shim process");
        assert!(status.success(), "the first process exits 0");
        assert_eq!(line.lines().count(), 1, "one sync line: {line:?}");
        let sync: Value = serde_json::from_str(line.trim()).expect("sync line is JSON");
        Shim {
            pid: sync["shim_pid"].as_i64().unwrap_or(0) as i32,
            sync,
            sock: dir.join(sock),
            dir,
        }
    }

    /// A container-mode shim for `c`.
    fn container(bin: &Path, e: &Env, c: &Container, extra: &[&str]) -> Shim {
        let bundle = c.bundle.to_str().expect("bundle path");
        let mut args = vec!["--bundle", bundle];
        args.extend_from_slice(extra);
        Shim::spawn(bin, e, c, "shim.sock", &args)
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.sock).expect("connect to the shim");
        s.set_read_timeout(Some(T)).expect("timeout");
        s
    }

    /// Sends `line` on a new connection and returns it (for WAIT, read the answer later).
    fn send(&self, line: &str) -> UnixStream {
        let mut s = self.connect();
        s.write_all(format!("{line}\n").as_bytes()).expect("send request");
        s
    }

    /// One request, its one-line answer.
    fn ask(&self, line: &str) -> String {
        read_line(self.send(line))
    }

    /// An ATTACH connection; the `OK` is read byte by byte so that no frame is consumed.
    fn attach(&self, what: &str) -> UnixStream {
        let mut s = self.send(&format!("ATTACH {what}"));
        let mut answer = Vec::new();
        let mut b = [0u8; 1];
        while s.read(&mut b).expect("read ATTACH answer") == 1 && b[0] != b'\n' {
            answer.push(b[0]);
        }
        assert_eq!(String::from_utf8_lossy(&answer), "OK");
        s
    }

    /// Waits until the shim process is gone (or a zombie of its new parent).
    fn wait_gone(&self) {
        let deadline = Instant::now() + T;
        while alive(self.pid) {
            assert!(Instant::now() < deadline, "shim {} still running", self.pid);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        if self.pid > 0 && alive(self.pid) && String::from_utf8_lossy(&cmdline).contains("berth-shim") {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A tmpfs for `--unmount`, unmounted when dropped if it still is mounted.
struct TmpfsMount(PathBuf);

impl TmpfsMount {
    fn new(path: &Path) -> TmpfsMount {
        std::fs::create_dir_all(path).expect("mkdir mount point");
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount tmpfs");
        TmpfsMount(path.to_path_buf())
    }

    fn mounted(&self) -> bool {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let p = self.0.to_string_lossy();
        info.lines().any(|l| l.split(' ').nth(4) == Some(&*p))
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        if self.mounted() {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn read_line(s: UnixStream) -> String {
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line.trim_end().to_string()
}

/// Reads frames until the shim closes the connection: (stdout, stderr) as text.
fn frames_to_end(mut s: UnixStream) -> (String, String) {
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read frames");
    let mut out = (Vec::new(), Vec::new());
    let mut rest = all.as_slice();
    while !rest.is_empty() {
        assert!(rest.len() >= 8, "a cut frame header: {rest:?}");
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        assert_eq!(&rest[1..4], &[0, 0, 0]);
        let payload = &rest[8..8 + len];
        match rest[0] {
            1 => out.0.extend_from_slice(payload),
            2 => out.1.extend_from_slice(payload),
            other => panic!("stream byte {other}"),
        }
        rest = &rest[8 + len..];
    }
    (
        String::from_utf8_lossy(&out.0).into_owned(),
        String::from_utf8_lossy(&out.1).into_owned(),
    )
}

/// Reads frames until `needle` has shown up in the stdout payloads.
fn read_stdout_until(s: &mut UnixStream, needle: &str) -> String {
    let mut text = String::new();
    let deadline = Instant::now() + T;
    while !text.contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in {text:?}");
        let mut h = [0u8; 8];
        s.read_exact(&mut h).expect("frame header");
        let mut p = vec![0u8; u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize];
        s.read_exact(&mut p).expect("frame payload");
        if h[0] == 1 {
            text.push_str(&String::from_utf8_lossy(&p));
        }
    }
    text
}

fn send_frame(s: &mut UnixStream, kind: u8, payload: &[u8]) {
    let mut f = vec![kind, 0, 0, 0];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    s.write_all(&f).expect("send frame");
}

fn exit_of(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("EXIT line: {line:?}"));
    assert_eq!(v["oom_killed"], false, "{v}");
    assert!(v["finished_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    v
}

#[test]
fn container_output_frames_exit_log_and_cleanup() {
    let Some((e, bin)) = ready() else { return };
    let c = container(&e, "echo hello; echo err >&2; exit 3");
    let log = c.dir.join("shim/c.log");
    let mnt = TmpfsMount::new(&c.dir.join("mnt"));
    let s = Shim::container(
        &bin,
        &e,
        &c,
        &[
            "--log",
            log.to_str().unwrap(),
            "--unmount",
            mnt.0.to_str().unwrap(),
        ],
    );
    assert_eq!(s.sync["ok"], true, "{}", s.sync);
    let init = s.sync["pid"].as_i64().unwrap_or(0);
    assert!(init > 0 && s.pid > 0, "{}", s.sync);
    assert_eq!(
        std::fs::read_to_string(s.dir.join("shim.pid")).unwrap().trim(),
        s.pid.to_string()
    );
    let status: Value = serde_json::from_str(&s.ask("STATUS")).unwrap();
    assert_eq!(status, json!({"state": "created", "pid": init}));
    let attached = s.attach("stdout stderr");
    let wait = s.send("WAIT");
    assert_eq!(s.ask("START"), format!("OK {init}"));
    let (out, err) = frames_to_end(attached);
    assert_eq!((out.as_str(), err.as_str()), ("hello\n", "err\n"));
    let x = exit_of(&read_line(wait));
    assert_eq!(
        (x["exit_code"].clone(), x["signal"].clone()),
        (json!(3), Value::Null)
    );
    let file = std::fs::read_to_string(s.dir.join("exit.json")).expect("exit.json");
    assert_eq!(exit_of(file.trim()), x);
    let mut lines: Vec<Value> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    lines.sort_by_key(|v| v["stream"].as_str().unwrap_or("").to_string());
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (v, (text, stream)) in lines.iter().zip([("err\n", "stderr"), ("hello\n", "stdout")]) {
        assert_eq!(
            (v["log"].as_str(), v["stream"].as_str()),
            (Some(text), Some(stream))
        );
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    s.wait_gone();
    assert!(!c.state_left(), "the runtime state is deleted");
    assert!(!s.sock.exists(), "the socket is removed");
    assert!(!s.dir.join("shim.pid").exists(), "the pid file is removed");
    assert!(!mnt.mounted(), "--unmount PATH is unmounted at the end");
}

#[test]
fn stdin_frames_reach_the_container_and_close_ends_it() {
    let Some((e, bin)) = ready() else { return };
    let c = container(&e, "cat");
    let s = Shim::container(&bin, &e, &c, &["--stdin"]);
    assert_eq!(s.sync["ok"], true, "{}", s.sync);
    let mut a = s.attach("stdin stdout stderr");
    let wait = s.send("WAIT");
    assert!(s.ask("START").starts_with("OK "));
    send_frame(&mut a, 0, b"ping\n");
    assert_eq!(read_stdout_until(&mut a, "ping\n"), "ping\n");
    send_frame(&mut a, 0, b"pong");
    send_frame(&mut a, 1, b"");
    let (out, _) = frames_to_end(a);
    assert_eq!(out, "pong");
    assert_eq!(exit_of(&read_line(wait))["exit_code"], 0);
    s.wait_gone();
}

#[test]
fn tty_resize_before_start_is_what_the_process_sees() {
    let Some((e, bin)) = ready() else { return };
    let mut c = container(&e, "stty size");
    c.config["process"]["terminal"] = json!(true);
    c.write_config();
    let s = Shim::container(&bin, &e, &c, &["--tty"]);
    assert_eq!(s.sync["ok"], true, "{}", s.sync);
    assert_eq!(s.ask("RESIZE 30 100"), "OK");
    let a = s.attach("stdout stderr");
    let wait = s.send("WAIT");
    assert!(s.ask("START").starts_with("OK "));
    let (out, err) = frames_to_end(a);
    assert_eq!(out.trim(), "30 100", "everything is stream 1 with a terminal");
    assert_eq!(err, "");
    assert_eq!(exit_of(&read_line(wait))["exit_code"], 0);
}

#[test]
fn kill_9_ends_with_137_and_signal_9() {
    let Some((e, bin)) = ready() else { return };
    let mut c = container(&e, "");
    c.config["process"]["args"] = json!(["sleep", "100"]);
    c.write_config();
    let s = Shim::container(&bin, &e, &c, &[]);
    assert_eq!(s.sync["ok"], true, "{}", s.sync);
    let wait = s.send("WAIT");
    assert!(s.ask("START").starts_with("OK "));
    assert!(s.ask("START").starts_with("ERR "), "a second START fails");
    let status: Value = serde_json::from_str(&s.ask("STATUS")).unwrap();
    assert_eq!(status["state"], "running");
    // The shim blocks and ignores signals of its own; the container inherits none of that.
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", status["pid"])).unwrap();
    for field in ["SigBlk:", "SigIgn:"] {
        let line = proc_status.lines().find(|l| l.starts_with(field)).unwrap_or("");
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    assert!(s.ask("RESIZE 10 10").starts_with("ERR "), "no terminal to resize");
    assert!(s.ask("KILL NOSUCH").starts_with("ERR "));
    // A second shim on the same directory is refused and leaves the first one alone.
    let second = Shim::container(&bin, &e, &c, &[]);
    assert_eq!(second.sync["ok"], false, "{}", second.sync);
    assert!(
        second.sync["error"]
            .as_str()
            .unwrap_or("")
            .contains("another shim"),
        "{}",
        second.sync
    );
    assert!(s.sock.exists() && s.dir.join("shim.pid").exists());
    assert_eq!(
        std::fs::read_to_string(s.dir.join("shim.pid")).unwrap().trim(),
        s.pid.to_string()
    );
    assert_eq!(s.ask("KILL 9"), "OK");
    let x = exit_of(&read_line(wait));
    assert_eq!(
        (x["exit_code"].clone(), x["signal"].clone()),
        (json!(137), json!(9))
    );
    s.wait_gone();
    assert!(!c.state_left());
}

#[test]
fn create_failure_reports_the_runtime_error_and_leaves_nothing() {
    let Some((e, bin)) = ready() else { return };
    let mut c = container(&e, "");
    c.config["process"]["args"] = json!(["nosuchcmd"]);
    c.write_config();
    let s = Shim::container(&bin, &e, &c, &[]);
    assert_eq!(s.sync["ok"], false, "{}", s.sync);
    let msg = s.sync["error"].as_str().unwrap_or("");
    assert!(msg.contains("executable file not found"), "{msg}");
    assert!(!c.state_left(), "no runtime state");
    assert!(!s.sock.exists() && !s.dir.join("shim.pid").exists());
    assert!(!s.dir.join("exit.json").exists());
}

/// The process.json of an exec: the container's process with other arguments.
fn exec_process(c: &Container, args: &[&str], tty: bool, name: &str) -> PathBuf {
    let mut p = c.config["process"].clone();
    p["args"] = json!(args);
    p["terminal"] = json!(tty);
    let path = c.dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
    path
}

fn exec_shim(bin: &Path, e: &Env, c: &Container, name: &str, process: &Path, tty: bool) -> Shim {
    let mut args = vec!["--exec", name, "--process", process.to_str().unwrap()];
    if tty {
        args.push("--tty");
    }
    Shim::spawn(bin, e, c, &format!("exec-{name}.sock"), &args)
}

#[test]
fn exec_sessions_into_a_running_container() {
    let Some((e, bin)) = ready() else { return };
    let c = container(&e, "sleep 100");
    let main = Shim::container(&bin, &e, &c, &[]);
    let main_wait = main.send("WAIT");
    assert!(main.ask("START").starts_with("OK "));

    let p = exec_process(
        &c,
        &["sh", "-c", "echo exec-out; echo exec-err >&2; exit 5"],
        false,
        "e1",
    );
    let x1 = exec_shim(&bin, &e, &c, "e1", &p, false);
    assert_eq!(x1.sync["ok"], true, "{}", x1.sync);
    assert_eq!(x1.sync["pid"], 0, "nothing runs before START");
    assert_ne!(x1.pid, main.pid);
    assert!(x1.dir.join("shim-e1.pid").exists());
    let status: Value = serde_json::from_str(&x1.ask("STATUS")).unwrap();
    assert_eq!(status, json!({"state": "created", "pid": 0}));
    let a = x1.attach("stdout stderr");
    let wait = x1.send("WAIT");
    let started = x1.ask("START");
    assert!(started.starts_with("OK "), "{started}");
    assert_eq!(
        frames_to_end(a),
        ("exec-out\n".to_string(), "exec-err\n".to_string())
    );
    let x = exit_of(&read_line(wait));
    assert_eq!(x["exit_code"], 5);
    let file = std::fs::read_to_string(x1.dir.join("exit-e1.json")).expect("exit-e1.json");
    assert_eq!(exit_of(file.trim()), x);
    x1.wait_gone();
    assert!(!x1.sock.exists() && !x1.dir.join("shim-e1.pid").exists());
    assert!(c.state_left(), "an exec's end leaves the container alone");

    // With a terminal, a RESIZE before START applies as soon as the terminal exists (the process
    // may already run by then: a size needed from the first instant is the process file's
    // consoleSize).
    let script = "i=0; until [ \"$(stty size 2>/dev/null)\" = '20 70' ]; do \
                  i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done; echo resized";
    let p = exec_process(&c, &["sh", "-c", script], true, "e2");
    let x2 = exec_shim(&bin, &e, &c, "e2", &p, true);
    assert_eq!(x2.sync["ok"], true, "{}", x2.sync);
    assert_eq!(x2.ask("RESIZE 20 70"), "OK");
    let a = x2.attach("stdout");
    let wait = x2.send("WAIT");
    assert!(x2.ask("START").starts_with("OK "));
    assert_eq!(frames_to_end(a).0.trim(), "resized");
    assert_eq!(exit_of(&read_line(wait))["exit_code"], 0);

    // An exec whose program does not exist: START fails, the EXIT carries the error.
    let p = exec_process(&c, &["/no/such/program"], false, "e3");
    let x3 = exec_shim(&bin, &e, &c, "e3", &p, false);
    let wait = x3.send("WAIT");
    let started = x3.ask("START");
    assert!(started.starts_with("ERR "), "{started}");
    let x = exit_of(&read_line(wait));
    assert!(x["error"].as_str().is_some_and(|m| !m.is_empty()), "{x}");
    assert_ne!(x["exit_code"], 0);

    assert_eq!(main.ask("KILL 9"), "OK");
    assert_eq!(exit_of(&read_line(main_wait))["exit_code"], 137);
}

#[test]
fn log_rotation_keeps_max_files_under_max_size() {
    let Some((e, bin)) = ready() else { return };
    let c = container(
        &e,
        "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done",
    );
    let log = c.dir.join("shim/c.log");
    let s = Shim::container(
        &bin,
        &e,
        &c,
        &[
            "--log",
            log.to_str().unwrap(),
            "--log-max-size",
            "4096",
            "--log-max-files",
            "3",
        ],
    );
    assert_eq!(s.sync["ok"], true, "{}", s.sync);
    let wait = s.send("WAIT");
    assert!(s.ask("START").starts_with("OK "));
    assert_eq!(exit_of(&read_line(wait))["exit_code"], 0);
    let name = |n: u32| {
        if n == 0 {
            log.clone()
        } else {
            PathBuf::from(format!("{}.{n}", log.display()))
        }
    };
    assert!(!name(3).exists(), "at most 3 files");
    let mut numbers = Vec::new();
    for n in (0..3).rev() {
        let text = std::fs::read_to_string(name(n)).unwrap_or_else(|_| panic!("{}", name(n).display()));
        let longest = text.lines().map(|l| l.len() + 1).max().unwrap_or(0);
        assert!(
            text.len() <= 4096 + longest,
            "{} has {} bytes",
            name(n).display(),
            text.len()
        );
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            let msg = v["log"].as_str().unwrap_or("");
            numbers.push(
                msg.trim_end()
                    .trim_start_matches("line-")
                    .parse::<u32>()
                    .expect(msg),
            );
        }
    }
    assert_eq!(numbers.last(), Some(&2999));
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "lines are contiguous across files"
    );
    assert!(numbers.len() > 100, "three files of 4 KiB hold many lines");
}

#[test]
fn a_killed_shim_closes_its_connections_without_exit() {
    let Some((e, bin)) = ready() else { return };
    let c = container(&e, "sleep 100");
    let s = Shim::container(&bin, &e, &c, &[]);
    assert_eq!(s.sync["ok"], true, "{}", s.sync);
    assert!(s.ask("START").starts_with("OK "));
    let mut wait = s.send("WAIT");
    let attached = s.attach("stdout");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the shim");
    let mut rest = Vec::new();
    wait.read_to_end(&mut rest).expect("the connection closes");
    assert!(
        rest.is_empty(),
        "no EXIT line: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(frames_to_end(attached), (String::new(), String::new()));
    s.wait_gone();
    assert_eq!(c.status(), "running", "the container outlives its monitor");
    assert!(!s.dir.join("exit.json").exists());
}

#[test]
fn a_slow_client_holds_the_output_back_and_nothing_is_lost() {
    let Some((e, bin)) = ready() else { return };
    const TOTAL: usize = 4 * 1024 * 1024;
    let c = container(&e, &format!("busybox head -c {TOTAL} /dev/zero"));
    let s = Shim::container(&bin, &e, &c, &[]);
    assert_eq!(s.sync["ok"], true, "{}", s.sync);
    let fast = s.attach("stdout");
    let mut slow = s.attach("stdout");
    let wait = s.send("WAIT");
    assert!(s.ask("START").starts_with("OK "));
    let pid = s.pid;
    let slow_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut peak_rss_kb = 0u64;
        loop {
            let n = slow.read(&mut buf).expect("slow read");
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let rss = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            peak_rss_kb = peak_rss_kb.max(rss);
            std::thread::sleep(Duration::from_millis(3));
        }
        (all, peak_rss_kb)
    });
    let (out, _) = frames_to_end(fast);
    let (slow_bytes, peak_rss_kb) = slow_reader.join().expect("slow reader");
    assert_eq!(out.len(), TOTAL, "the fast client got everything");
    let mut slow_payload = 0;
    let mut rest = slow_bytes.as_slice();
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        slow_payload += len;
        rest = &rest[8 + len..];
    }
    assert_eq!(slow_payload, TOTAL, "the slow client got everything");
    eprintln!("peak shim VmRSS while a client was slow: {peak_rss_kb} kB");
    assert!(peak_rss_kb < 16 * 1024, "the shim buffered {peak_rss_kb} kB");
    assert_eq!(exit_of(&read_line(wait))["exit_code"], 0);
}

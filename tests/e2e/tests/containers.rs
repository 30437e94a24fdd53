//! Containers through berthd, end to end: the unmodified docker CLI (and raw API requests) against
//! berthd with berth-shim and berth-runtime: run with output and exit codes, -d, logs, exec, stop
//! and kill, rm, --rm, names, restart policies, limits seen from inside, a terminal session under a
//! pty, berthd restarted with containers running, a shim killed with SIGKILL.
//!
//! Images come from `docker import` of a busybox root filesystem (no registry needed), except the
//! pull-on-run test, which pushes to a private registry on 127.0.0.1.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::daemon::*;

const IMAGE: &str = "e2e-busybox";

/// berthd with the busybox image imported as `e2e-busybox` (CMD sh).
/// The daemon comes last so that it is dropped first, while its directory (whose records say
/// which bridges to delete) still exists.
fn setup() -> Option<(Tools, tempfile::TempDir, Daemon)> {
    let t = tools()?;
    for bin in ["berth-shim", "berth-runtime"] {
        let p = t.berthd.with_file_name(bin);
        if !p.is_file() {
            eprintln!(
                "skipped: {} not found (cargo build -p berth-shim -p berth-runtime-cli)",
                p.display()
            );
            return None;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&t, dir.path());
    let tar = busybox_tar(dir.path());
    ok(
        &t,
        &d,
        &["import", "--change", "CMD [\"sh\"]", tar.to_str().unwrap(), IMAGE],
    );
    Some((t, dir, d))
}

fn inspect(t: &Tools, d: &Daemon, id: &str, fmt: &str) -> String {
    ok(t, d, &["inspect", "-f", fmt, id]).trim().to_string()
}

#[test]
fn run_output_exit_codes_and_errors() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let (c, out, _) = code(&t, &d, &["run", "--rm", IMAGE, "echo", "hello from berth"]);
    assert_eq!((c, out.as_str()), (0, "hello from berth\n"));
    // stdout and stderr both arrive, the exit status is the container's.
    let (c, out, err) = code(
        &t,
        &d,
        &["run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(c, 3, "{out} {err}");
    assert_eq!(out, "out\n");
    assert!(err.contains("err\n"), "{err}");
    // The host's kernel, seen from inside.
    let host = String::from_utf8(Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    let (_, inside, _) = code(&t, &d, &["run", "--rm", IMAGE, "uname", "-r"]);
    assert_eq!(inside, host);
    // A command that is not in the image: 127 and docker's message.
    let (c, _, err) = code(&t, &d, &["run", "--rm", IMAGE, "no-such-command"]);
    assert_eq!(c, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    // Not executable: 126.
    let (c, _, err) = code(&t, &d, &["run", "--rm", IMAGE, "/etc/passwd"]);
    assert_eq!(c, 126, "{err}");
    // An unknown image.
    let (c, _, err) = code(&t, &d, &["run", "--rm", "no-such-image-here", "true"]);
    assert_eq!(c, 125, "{err}");
    // Bad values: docker's messages from the daemon.
    let (c, _, err) = code(&t, &d, &["run", "--rm", "--cap-add", "NOPE", IMAGE, "true"]);
    assert_eq!(c, 125);
    assert!(err.contains("unknown capability: \"CAP_NOPE\""), "{err}");
    // stdin with -i.
    let mut child = Command::new(&t.docker)
        .args(["run", "-i", "--rm", IMAGE, "sh", "-c", "tr a-z A-Z"])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped in\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "PIPED IN\n");
    // --rm left nothing.
    assert_eq!(ok(&t, &d, &["ps", "-aq"]).trim(), "");
}

#[test]
fn detached_containers_logs_exec_stop_rm() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let id = ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            IMAGE,
            "sh",
            "-c",
            "echo started; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let ps = ok(&t, &d, &["ps"]);
    assert!(ps.contains("web") && ps.contains("Up "), "{ps}");
    wait_for("log lines", Duration::from_secs(10), || {
        ok(&t, &d, &["logs", "web"]).contains("tick 3")
    });
    let logs = ok(&t, &d, &["logs", "--tail", "1", "web"]);
    assert_eq!(logs.lines().count(), 1, "{logs}");
    assert!(ok(&t, &d, &["logs", "-t", "web"])
        .lines()
        .next()
        .unwrap()
        .contains("Z started"));
    // exec: output, exit code, user, env, workdir.
    assert_eq!(ok(&t, &d, &["exec", "web", "echo", "in", "there"]), "in there\n");
    let (c, _, _) = code(&t, &d, &["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(c, 7);
    assert_eq!(
        ok(&t, &d, &["exec", "-u", "nobody", "web", "id", "-u"]),
        "65534\n"
    );
    assert_eq!(
        ok(
            &t,
            &d,
            &[
                "exec",
                "-e",
                "X=1",
                "-w",
                "/tmp",
                "web",
                "sh",
                "-c",
                "echo $X $PWD"
            ]
        ),
        "1 /tmp\n"
    );
    // Illegal in this state: start a running container is fine (no-op), rm without -f is not.
    let (c, _, err) = code(&t, &d, &["rm", "web"]);
    assert_eq!(c, 1);
    assert!(
        err.contains("container is running: stop the container before removing or force remove"),
        "{err}"
    );
    // Name in use.
    let (c, _, err) = code(&t, &d, &["create", "--name", "web", IMAGE]);
    assert_ne!(c, 0);
    assert!(err.contains("is already in use by container"), "{err}");
    // top lists the shell.
    assert!(ok(&t, &d, &["top", "web"]).contains("sh -c"));
    // A shell as PID 1 ignores SIGTERM: stop waits, then kills.
    let start = Instant::now();
    ok(&t, &d, &["stop", "-t", "1", "web"]);
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        inspect(&t, &d, "web", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    let (c, _, err) = code(&t, &d, &["exec", "web", "true"]);
    assert_ne!(c, 0);
    assert!(err.contains("is not running"), "{err}");
    // Start it again: the log keeps both runs.
    ok(&t, &d, &["start", "web"]);
    wait_for("second start", Duration::from_secs(10), || {
        ok(&t, &d, &["logs", "web"]).matches("started").count() == 2
    });
    ok(&t, &d, &["kill", "web"]);
    assert_eq!(ok(&t, &d, &["wait", "web"]).trim(), "137");
    ok(&t, &d, &["rm", "web"]);
    let (_, _, err) = code(&t, &d, &["inspect", "web"]);
    assert!(
        err.contains("No such object: web") || err.contains("No such container: web"),
        "{err}"
    );
    // A container that exits at once with a code, then its logs.
    let (c, out, _) = code(
        &t,
        &d,
        &["run", "--name", "quick", IMAGE, "sh", "-c", "echo bye; exit 4"],
    );
    assert_eq!((c, out.as_str()), (4, "bye\n"));
    assert_eq!(inspect(&t, &d, "quick", "{{.State.ExitCode}}"), "4");
    assert_eq!(ok(&t, &d, &["logs", "quick"]), "bye\n");
    let ps = ok(
        &t,
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}} {{.Status}}",
        ],
    );
    assert!(ps.starts_with("quick Exited (4)"), "{ps}");
}

#[test]
fn limits_and_security_seen_from_inside() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let mem = ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "--memory",
            "64m",
            IMAGE,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ],
    );
    assert_eq!(mem.trim(), "67108864");
    // --init: a small init is PID 1 and the command its child.
    if Path::new("/usr/bin/tini-static").exists() || Path::new("/usr/bin/docker-init").exists() {
        let out = ok(
            &t,
            &d,
            &[
                "run",
                "--rm",
                "--init",
                IMAGE,
                "sh",
                "-c",
                "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
            ],
        );
        assert!(out.starts_with("/sbin/docker-init -- sh"), "{out}");
        assert_ne!(out.lines().nth(1), Some("1"), "{out}");
    }
    // The OOM killer strikes: 137, OOMKilled, and an oom event.
    let (c, _, _) = code(
        &t,
        &d,
        &[
            "run",
            "--name",
            "hog",
            "--memory",
            "16m",
            "--memory-swap",
            "16m",
            IMAGE,
            "sh",
            "-c",
            "x=a; while true; do x=$x$x; done",
        ],
    );
    assert_eq!(c, 137);
    assert_eq!(inspect(&t, &d, "hog", "{{.State.OOMKilled}}"), "true");
    ok(&t, &d, &["rm", "hog"]);
    let caps = ok(
        &t,
        &d,
        &["run", "--rm", IMAGE, "sh", "-c", "grep CapBnd /proc/self/status"],
    );
    assert!(caps.contains("00000000a80425fb"), "{caps}");
    let caps = ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            IMAGE,
            "sh",
            "-c",
            "grep CapBnd /proc/self/status",
        ],
    );
    assert!(caps.contains("0000000000000000"), "{caps}");
    let sec = ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status",
        ],
    );
    assert!(sec.contains("2"), "{sec}");
    let (c, _, _) = code(&t, &d, &["run", "--rm", "--read-only", IMAGE, "touch", "/x"]);
    assert_ne!(c, 0);
    assert_eq!(
        ok(&t, &d, &["run", "--rm", "-h", "box1", IMAGE, "hostname"]),
        "box1\n"
    );
    assert_eq!(
        ok(&t, &d, &["run", "--rm", "-u", "nobody", IMAGE, "id", "-u"]),
        "65534\n"
    );
    // The default bridge: an interface of its own; `--network none` keeps loopback only.
    let (c, out, err) = code(&t, &d, &["run", "--rm", IMAGE, "sh", "-c", "ls /sys/class/net"]);
    assert_eq!((c, out.as_str()), (0, "eth0\nlo\n"), "{err}");
    assert!(err.is_empty(), "{err}");
    let (c, out, err) = code(
        &t,
        &d,
        &["run", "--rm", "--network", "none", IMAGE, "ls", "/sys/class/net"],
    );
    assert_eq!((c, out.as_str()), (0, "lo\n"), "{err}");
    let (c, out, _) = code(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            IMAGE,
            "sh",
            "-c",
            "ls /sys/class/net | wc -l",
        ],
    );
    assert_eq!(c, 0);
    assert!(out.trim().parse::<u32>().unwrap() >= 1);
    let (c, _, err) = code(&t, &d, &["run", "--rm", "--memory", "5x", IMAGE, "true"]);
    assert_eq!(c, 125);
    assert!(err.contains("invalid"), "{err}");
}

#[test]
fn restart_policies() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            IMAGE,
            "sh",
            "-c",
            "exit 1",
        ],
    );
    wait_for("two restarts then rest", Duration::from_secs(20), || {
        inspect(&t, &d, "flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "fine",
            "--restart",
            "on-failure",
            IMAGE,
            "true",
        ],
    );
    wait_for("exit", Duration::from_secs(10), || {
        inspect(&t, &d, "fine", "{{.State.Status}}") == "exited"
    });
    assert_eq!(inspect(&t, &d, "fine", "{{.RestartCount}}"), "0");
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "always",
            "--restart",
            "always",
            IMAGE,
            "sh",
            "-c",
            "sleep 0.3",
        ],
    );
    wait_for("restarts", Duration::from_secs(20), || {
        inspect(&t, &d, "always", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 2
    });
    // A manual stop ends it for good.
    ok(&t, &d, &["stop", "-t", "1", "always"]);
    let n = inspect(&t, &d, "always", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inspect(&t, &d, "always", "{{.State.Status}}"), "exited");
    assert_eq!(inspect(&t, &d, "always", "{{.RestartCount}}"), n);
    let (c, _, err) = code(&t, &d, &["run", "--rm", "--restart", "always", IMAGE, "true"]);
    assert_eq!(c, 125, "{err}");
}

#[test]
fn berthd_restarts_with_containers_running_and_a_killed_shim_is_told() {
    let Some((t, _dir, mut d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    ok(&t, &d, &["run", "-d", "--name", "long", IMAGE, "sleep", "1000"]);
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "short",
            IMAGE,
            "sh",
            "-c",
            "sleep 2; exit 5",
        ],
    );
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "back",
            "--restart",
            "always",
            IMAGE,
            "sleep",
            "1000",
        ],
    );
    let pid = inspect(&t, &d, "long", "{{.State.Pid}}");
    // berthd dies hard; the containers carry on.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    std::thread::sleep(Duration::from_secs(3));
    d.restart();
    assert_eq!(
        inspect(&t, &d, "long", "{{.State.Status}} {{.State.Pid}}"),
        format!("running {pid}")
    );
    assert_eq!(
        ok(&t, &d, &["exec", "long", "echo", "still here"]),
        "still here\n"
    );
    wait_for("the end seen while away", Duration::from_secs(10), || {
        inspect(&t, &d, "short", "{{.State.Status}} {{.State.ExitCode}}") == "exited 5"
    });
    assert_eq!(inspect(&t, &d, "back", "{{.State.Status}}"), "running");
    // The shim of a running container is killed: berthd says so and cleans up.
    let shim = std::fs::read_to_string(
        d.dir
            .join("exec/containers")
            .join(inspect(&t, &d, "long", "{{.Id}}"))
            .join("shim.pid"),
    )
    .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim.trim().parse().unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
    wait_for("the shim's death noticed", Duration::from_secs(10), || {
        inspect(&t, &d, "long", "{{.State.Status}}") == "exited"
    });
    assert_eq!(inspect(&t, &d, "long", "{{.State.ExitCode}}"), "137");
    wait_for(
        "the container's process to be gone",
        Duration::from_secs(5),
        || !Path::new(&format!("/proc/{pid}")).exists(),
    );
    ok(&t, &d, &["rm", "long"]);
}

/// A client (docker or berth) running under a pty, as a user at a terminal.
struct PtySession {
    child: std::process::Child,
    master: std::fs::File,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl PtySession {
    fn start(bin: &Path, d: &Daemon, args: &[&str]) -> PtySession {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave: std::fs::File = pty.slave.into();
        let child = Command::new(bin)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
            .env("BERTH_HOST", format!("unix://{}", d.sock.display()))
            .env("DOCKER_CONFIG", d.dir.join("docker-config"))
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave)
            .spawn()
            .unwrap();
        let master: std::fs::File = pty.master.into();
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        PtySession {
            child,
            master,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for `want` in the output, then forgets the output up to its end.
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let at = self.seen.windows(want.len()).position(|w| w == want.as_bytes());
            if let Some(i) = at {
                self.seen.drain(..i + want.len());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {want:?} in {:?}",
                String::from_utf8_lossy(&self.seen)
            );
            if let Ok(b) = self.rx.recv_timeout(Duration::from_millis(200)) {
                self.seen.extend(b);
            }
        }
    }

    fn send(&mut self, b: &[u8]) {
        self.master.write_all(b).unwrap();
    }

    fn status(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the client did not end");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_terminal_session_under_a_pty() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let b = berth_cli(&t);
    for cli in [&t.docker, &b] {
        if !cli.is_file() {
            continue;
        }
        // run -it: a shell on a terminal, its exit status.
        let mut s = PtySession::start(cli, &d, &["run", "-it", "--rm", IMAGE, "sh"]);
        s.expect("# ");
        s.send(b"tty; echo \"in-$((6*7))\"\r");
        s.expect("/dev/pts/0");
        s.expect("in-42");
        s.send(b"exit 3\r");
        assert_eq!(s.status(), 3, "{}", cli.display());
        // A long-running terminal container: exec -it, attach and detach with ctrl-p ctrl-q.
        ok(&t, &d, &["run", "-dit", "--name", "tty-box", IMAGE, "sh"]);
        let mut e = PtySession::start(cli, &d, &["exec", "-it", "tty-box", "sh"]);
        e.expect("# ");
        e.send(b"echo exec-$((2+3)); exit 5\r");
        e.expect("exec-5");
        assert_eq!(e.status(), 5, "{}", cli.display());
        let mut a = PtySession::start(cli, &d, &["attach", "tty-box"]);
        std::thread::sleep(Duration::from_millis(300));
        a.send(b"echo attached-$((1+1))\r");
        a.expect("attached-2");
        a.send(&[16, 17]);
        // docker's CLI reports the detach as "read escape sequence" and exits 1.
        assert!([0, 1].contains(&a.status()), "{}: detach", cli.display());
        assert_eq!(inspect(&t, &d, "tty-box", "{{.State.Status}}"), "running");
        // logs -f follows until the container ends.
        let follower = Command::new(cli)
            .args(["logs", "-f", "tty-box"])
            .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
            .env("BERTH_HOST", format!("unix://{}", d.sock.display()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        ok(
            &t,
            &d,
            &["exec", "tty-box", "sh", "-c", "echo followed > /proc/1/fd/1"],
        );
        ok(&t, &d, &["kill", "tty-box"]);
        let o = follower.wait_with_output().unwrap();
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("followed"),
            "{}",
            cli.display()
        );
        ok(&t, &d, &["rm", "tty-box"]);
    }
}

fn berth_cli(t: &Tools) -> PathBuf {
    t.berthd.with_file_name("berth")
}

fn code_with(bin: &Path, d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let o = run_cli(bin, d, args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_berth_cli_runs_containers() {
    let Some((t, dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let b = berth_cli(&t);
    if !b.is_file() {
        eprintln!("skipped: {} not found (cargo build -p berth-cli)", b.display());
        return;
    }
    let tar = busybox_tar(dir.path());
    ok_with(
        &b,
        &d,
        &[
            "import",
            "--change",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "bb-berth",
        ],
    );
    let (c, out, err) = code_with(&b, &d, &["run", "--rm", "bb-berth", "echo", "hello"]);
    assert_eq!((c, out.as_str()), (0, "hello\n"), "{err}");
    assert_eq!(code_with(&b, &d, &["run", "bb-berth", "sh", "-c", "exit 3"]).0, 3);
    let (c, _, err) = code_with(&b, &d, &["run", "--rm", "bb-berth", "nope"]);
    assert_eq!(c, 127, "{err}");
    let (c, _, err) = code_with(&b, &d, &["run", "--rm", "--memory", "5x", "bb-berth", "true"]);
    assert_eq!(c, 125);
    assert!(
        err.contains("invalid argument \"5x\" for \"-m, --memory\" flag"),
        "{err}"
    );
    let (c, _, err) = code_with(
        &b,
        &d,
        &["run", "--rm", "--env-file", "/nonexistent", "bb-berth", "true"],
    );
    assert_eq!(c, 125);
    assert!(
        err.contains("open /nonexistent: no such file or directory"),
        "{err}"
    );
    let id = ok_with(
        &b,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "bw",
            "bb-berth",
            "sh",
            "-c",
            "echo hi; sleep 100",
        ],
    );
    assert_eq!(id.trim().len(), 64);
    wait_for("its log", Duration::from_secs(10), || {
        ok_with(&b, &d, &["logs", "bw"]) == "hi\n"
    });
    let ps = ok_with(&b, &d, &["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("bw Up"), "{ps}");
    assert_eq!(code_with(&b, &d, &["exec", "bw", "sh", "-c", "exit 4"]).0, 4);
    // cp both ways, diff, rename, pause, update, stats, export.
    let f = dir.path().join("greeting");
    std::fs::write(&f, "from the host\n").unwrap();
    ok_with(&b, &d, &["cp", f.to_str().unwrap(), "bw:/tmp/"]);
    assert_eq!(
        ok_with(&b, &d, &["exec", "bw", "cat", "/tmp/greeting"]),
        "from the host\n"
    );
    let back = dir.path().join("back");
    ok_with(&b, &d, &["cp", "bw:/tmp/greeting", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from the host\n");
    let diff = ok_with(&b, &d, &["diff", "bw"]);
    assert_eq!(diff, "C /tmp\nA /tmp/greeting\n");
    ok_with(&b, &d, &["rename", "bw", "bw2"]);
    ok_with(&b, &d, &["pause", "bw2"]);
    assert_eq!(
        ok_with(&b, &d, &["inspect", "-f", "{{.State.Status}}", "bw2"]).trim(),
        "paused"
    );
    ok_with(&b, &d, &["unpause", "bw2"]);
    ok_with(&b, &d, &["update", "--memory", "128m", "bw2"]);
    assert_eq!(
        ok_with(&b, &d, &["inspect", "-f", "{{.HostConfig.Memory}}", "bw2"]).trim(),
        "134217728"
    );
    let stats = ok_with(
        &b,
        &d,
        &["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "bw2"],
    );
    assert!(stats.starts_with("bw2 "), "{stats}");
    let exported = run_cli(&b, &d, &["export", "bw2"]);
    assert!(
        exported.stdout.len() > 1 << 20,
        "export gave {} bytes",
        exported.stdout.len()
    );
    // stop, rm rules, prune.
    let (c, _, err) = code_with(&b, &d, &["rm", "bw2"]);
    assert_eq!(c, 1, "{err}");
    ok_with(&b, &d, &["stop", "-t", "1", "bw2"]);
    ok_with(&b, &d, &["rm", "bw2"]);
    let pruned = ok_with(&b, &d, &["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert_eq!(ok_with(&b, &d, &["ps", "-aq"]).trim(), "");
}

#[test]
fn heavy_logs_rotate_and_events_are_told() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let since = ok(&t, &d, &["version", "-f", "{{.Server.Version}}"]);
    assert!(!since.is_empty());
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    // 20 MB of output through a 1 MB x 3 rotation.
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "noisy",
            "--log-opt",
            "max-size=1m",
            "--log-opt",
            "max-file=3",
            IMAGE,
            "sh",
            "-c",
            "yes 0123456789abcdef | head -n 1200000; echo done",
        ],
    );
    wait_for("the noisy container to end", Duration::from_secs(180), || {
        inspect(&t, &d, "noisy", "{{.State.Status}}") == "exited"
    });
    assert_eq!(inspect(&t, &d, "noisy", "{{.State.ExitCode}}"), "0");
    let log = PathBuf::from(inspect(&t, &d, "noisy", "{{.LogPath}}"));
    let files = berth_e2e_log_files(&log);
    assert!((1..=3).contains(&files.len()), "{files:?}");
    for f in &files {
        let n = std::fs::metadata(f).unwrap().len();
        assert!(n <= (1 << 20) + 512, "{} has {n} bytes", f.display());
    }
    assert_eq!(ok(&t, &d, &["logs", "--tail", "1", "noisy"]), "done\n");
    // berthd is fine, and the events tell the story.
    ok(&t, &d, &["rm", "noisy"]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let ev = ok(
        &t,
        &d,
        &[
            "events",
            "--since",
            &t0,
            "--until",
            &until,
            "--filter",
            "container=noisy",
            "--format",
            "{{.Action}}",
        ],
    );
    let actions: Vec<&str> = ev.lines().collect();
    for want in ["create", "start", "die", "destroy"] {
        assert!(actions.contains(&want), "no {want} in {actions:?}");
    }
}

/// The log file and its rotated siblings.
fn berth_e2e_log_files(log: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().starts_with(&*log.to_string_lossy()))
        .collect();
    v.sort();
    v
}

#[test]
fn run_pulls_a_missing_image_with_the_seeds_lines() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let b = berth_cli(&t);
    let reg = registry(&t);
    let name = format!("{}/seed/busybox", reg.addr);
    ok(&t, &d, &["tag", IMAGE, &name]);
    ok(&t, &d, &["push", &name]);
    // Nothing of it left locally: the pull must fetch every layer.
    ok(&t, &d, &["rmi", &name, IMAGE]);
    for (cli, what) in [(&b, "berth"), (&t.docker, "docker")] {
        if !cli.is_file() {
            continue;
        }
        let (c, out, err) = code_with(cli, &d, &["run", "--rm", &name, "echo", "pulled and ran"]);
        assert_eq!((c, out.as_str()), (0, "pulled and ran\n"), "{what}: {err}");
        for line in [
            format!("Unable to find image '{name}:latest' locally"),
            "latest: Pulling from seed/busybox".to_string(),
            "Pull complete".to_string(),
            "Digest: sha256:".to_string(),
            format!("Status: Downloaded newer image for {name}:latest"),
        ] {
            assert!(err.contains(&line), "{what}: no {line:?} in {err}");
        }
        ok(&t, &d, &["rmi", &name]);
    }
}

//! `probe`: run inside a test container, it reports what the container looks like from inside, one
//! `key=value` per line, so that the end-to-end tests can assert on it. Built static (the test rootfs
//! has no libc): `cargo rustc -p berth-probe --release -- -C target-feature=+crt-static`.

use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use nix::errno::Errno;

fn errno_name(e: &std::io::Error) -> String {
    e.raw_os_error()
        .map(|n| format!("{:?}", Errno::from_raw(n)))
        .unwrap_or_else(|| e.to_string())
}

fn status_field(name: &str) -> String {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let mut out = String::new();
    let mut code = 0u8;
    match arg(0).as_str() {
        "pid" => out = format!("pid={}\nppid={}\n", std::process::id(), nix::unistd::getppid()),
        "id" => {
            let groups: Vec<String> = nix::unistd::getgroups()
                .unwrap_or_default()
                .iter()
                .map(|g| g.to_string())
                .collect();
            out = format!(
                "uid={}\ngid={}\neuid={}\ngroups={}\n",
                nix::unistd::getuid(),
                nix::unistd::getgid(),
                nix::unistd::geteuid(),
                groups.join(",")
            );
        }
        "caps" => {
            for f in [
                "CapInh",
                "CapPrm",
                "CapEff",
                "CapBnd",
                "CapAmb",
                "NoNewPrivs",
                "Seccomp",
            ] {
                out.push_str(&format!("{f}={}\n", status_field(f)));
            }
        }
        "hostname" => {
            let h = nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default();
            let d = fs::read_to_string("/proc/sys/kernel/domainname").unwrap_or_default();
            out = format!("hostname={h}\ndomainname={}\n", d.trim());
        }
        "mounts" => {
            let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            for l in mi.lines() {
                if let Some(mp) = l.split(' ').nth(4) {
                    out.push_str(&format!("mount={mp}\n"));
                }
            }
        }
        "read" => match fs::File::open(arg(1)).and_then(|mut f| {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).map(|_| buf.len())
        }) {
            Ok(n) => out = format!("read=ok\nbytes={n}\n"),
            Err(e) => out = format!("read={}\n", errno_name(&e)),
        },
        "readdir" => match fs::read_dir(arg(1)) {
            Ok(rd) => out = format!("readdir=ok\nentries={}\n", rd.count()),
            Err(e) => out = format!("readdir={}\n", errno_name(&e)),
        },
        "write" => match fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(arg(1))
            .and_then(|mut f| f.write_all(b"x"))
        {
            Ok(()) => out = "write=ok\n".into(),
            Err(e) => out = format!("write={}\n", errno_name(&e)),
        },
        "getcwd" => match std::env::current_dir() {
            Ok(p) => out = format!("getcwd=ok\ncwd={}\n", p.display()),
            Err(e) => {
                out = format!(
                    "getcwd={}\nerrno={}\n",
                    errno_name(&e),
                    e.raw_os_error().unwrap_or(0)
                )
            }
        },
        "forkbomb" => out = forkbomb(arg(1).parse().unwrap_or(100)),
        "alloc" => {
            let mb: usize = arg(1).parse().unwrap_or(64);
            let mut v: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mb {
                v.push(vec![1u8; 1 << 20]);
            }
            out = format!("alloc=ok\nmb={}\n", v.len());
        }
        "uidmap" => {
            let read = |p| {
                fs::read_to_string(p)
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            out = format!(
                "uid_map={}\ngid_map={}\n",
                read("/proc/self/uid_map"),
                read("/proc/self/gid_map")
            );
        }
        "cgroup" => out = fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        "ns" => {
            for n in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
                let l = fs::read_link(format!("/proc/self/ns/{n}"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                out.push_str(&format!("{n}={l}\n"));
            }
        }
        "rlimit" => {
            let l = fs::read_to_string("/proc/self/limits").unwrap_or_default();
            let line = l.lines().find(|x| x.starts_with("Max open files")).unwrap_or("");
            let f: Vec<&str> = line.split_whitespace().collect();
            out = format!(
                "nofile_soft={}\nnofile_hard={}\n",
                f.get(3).unwrap_or(&""),
                f.get(4).unwrap_or(&"")
            );
        }
        "umask" => {
            let m = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            out = format!("umask={:04o}\n", m.bits());
        }
        "env" => {
            for (k, v) in std::env::vars() {
                out.push_str(&format!("env.{k}={v}\n"));
            }
        }
        "uptime" => {
            let up = fs::read_to_string("/proc/uptime").unwrap_or_default();
            out = format!(
                "uptime={}\n",
                up.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .split('.')
                    .next()
                    .unwrap_or("")
            );
        }
        "cwd" => {
            out = format!(
                "cwd={}\n",
                std::env::current_dir()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )
        }
        "tty" => {
            out = format!(
                "stdin_tty={}\nstdout_tty={}\nstderr_tty={}\n",
                std::io::stdin().is_terminal(),
                std::io::stdout().is_terminal(),
                std::io::stderr().is_terminal()
            );
        }
        "exit" => code = arg(1).parse().unwrap_or(0),
        "kill-self" => {
            let sig = nix::sys::signal::Signal::try_from(arg(1).parse::<i32>().unwrap_or(9))
                .unwrap_or(nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::signal::kill(nix::unistd::getpid(), sig);
            std::thread::sleep(std::time::Duration::from_secs(5));
        }
        "sleep" => std::thread::sleep(std::time::Duration::from_secs(arg(1).parse().unwrap_or(3600))),
        other => {
            eprintln!("probe: unknown check {other:?}");
            return ExitCode::from(2);
        }
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

/// Forks up to `n` children that sleep, then reaps them all: how many forks succeeded and the first
/// errno (a pids limit makes fork fail with EAGAIN).
fn forkbomb(n: usize) -> String {
    let mut kids = Vec::new();
    let mut err = String::from("none");
    for _ in 0..n {
        // Children are new processes of the probe itself (fork + exec): each one counts against a
        // pids limit just as a bare fork would.
        match std::process::Command::new("/proc/self/exe")
            .args(["sleep", "30"])
            .spawn()
        {
            Ok(c) => kids.push(c),
            Err(e) => {
                err = errno_name(&e);
                break;
            }
        }
    }
    let forked = kids.len();
    for mut k in kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    format!("forked={forked}\nerror={err}\n")
}

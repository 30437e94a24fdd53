//! berthd end to end: a real registry (Debian's docker-registry) on 127.0.0.1, berthd on a private
//! socket and data root, driven by the unmodified docker CLI (/usr/local/bin/docker, or E2E_DOCKER)
//! and by raw API requests: import, push, pull (with the lines docker users know), tag, rmi,
//! save/load, errors, a daemon killed with SIGKILL in the middle of a pull, two daemons side by side.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::daemon::*;
use berth_e2e::which;

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
    // Refused before it touched anything: no default bridge of its own was made.
    assert!(!b_dir.path().join("data2/network").exists());
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
    let berth = berth_e2e::built_in("debug", "berth");
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
# Containers: run with output, detached with logs and exec, stop, wait, remove.
out = c.containers.run(img.id, ['sh', '-c', 'echo from the sdk'], remove=True, network_mode='none')
assert out == b'from the sdk\n', out
ct = c.containers.run(img.id, ['/bin/busybox', 'sleep', '100'], detach=True, name='sdk-box', network_mode='none')
ct.reload()
assert ct.status == 'running', ct.status
r = ct.exec_run(['sh', '-c', 'echo in; exit 3'])
assert (r.exit_code, r.output) == (3, b'in\n'), r
assert c.containers.get('sdk-box').id == ct.id
assert [x.id for x in c.containers.list()] == [ct.id]
ct.stop(timeout=1)
assert ct.wait()['StatusCode'] == 137
ct.remove()
try:
    c.containers.get('sdk-box')
    raise SystemExit('expected NotFound')
except docker.errors.NotFound:
    pass
try:
    c.containers.run(img.id, ['no-such-program'], remove=True, network_mode='none')
    raise SystemExit('expected an error')
except docker.errors.APIError as e:
    assert 'executable file not found' in str(e), e
print('sdk ok')
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&d.sock)
        .arg(&reg.addr)
        .output()
        .unwrap();
    // Whatever the script left (it failed half-way): no container outlives the test.
    for id in ok(&t, &d, &["ps", "-aq"]).split_whitespace() {
        let _ = run_cli(&t.docker, &d, &["rm", "-f", id]);
    }
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("sdk ok"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

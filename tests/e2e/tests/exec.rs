//! `exec` joins the running container's namespaces and cgroup, with its own env, cwd and user, and
//! returns its exit status; `ps` lists the container's processes.

use berth_e2e::{env, Container};

fn start(c: &Container) {
    c.rt(&["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id])
        .ok();
}

#[test]
fn exec_joins_namespaces_and_cgroup() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    start(&c);
    let o = c.rt(&["exec", &c.id, "/bin/sh", "-c", "for n in ipc mnt net pid uts cgroup; do echo ns.$n=$(readlink /proc/1/ns/$n) $(readlink /proc/self/ns/$n); done; echo; cat /proc/1/cgroup; echo ---; cat /proc/self/cgroup"]);
    o.ok();
    for l in o.stdout.lines().filter(|l| l.starts_with("ns.")) {
        let (_, v) = l.split_once('=').unwrap();
        let parts: Vec<&str> = v.split_whitespace().collect();
        assert_eq!(parts.len(), 2, "{l}");
        assert_eq!(
            parts[0], parts[1],
            "exec is not in the container's namespace: {l}"
        );
    }
    let (init_cg, exec_cg) = o.stdout.split_once("---").unwrap();
    let init_cg: Vec<&str> = init_cg
        .lines()
        .filter(|l| l.contains(':') && !l.starts_with("ns."))
        .collect();
    let exec_cg: Vec<&str> = exec_cg.lines().filter(|l| l.contains(':')).collect();
    assert_eq!(init_cg, exec_cg);
}

#[test]
fn exec_status_env_cwd_user() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    start(&c);
    assert_eq!(c.rt(&["exec", &c.id, "/bin/probe", "exit", "5"]).code, 5);
    let o = c.rt(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        &c.id,
        "/bin/sh",
        "-c",
        "echo foo=$FOO; echo cwd=$(pwd); echo uid=$(id -u)",
    ]);
    o.ok();
    assert_eq!(o.get("foo").as_deref(), Some("bar"));
    assert_eq!(o.get("cwd").as_deref(), Some("/tmp"));
    assert_eq!(o.get("uid").as_deref(), Some("1000"));
    let missing = c.rt(&["exec", &c.id, "/no/such/program"]);
    assert_ne!(missing.code, 0);
}

#[test]
fn exec_detached_with_pid_file_and_ps() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    start(&c);
    let pid_file = c.dir.join("exec.pid");
    c.rt(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "/bin/probe",
        "sleep",
        "60",
    ])
    .ok();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ps = c.rt(&["ps", "--format", "json", &c.id]);
    ps.ok();
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");
    assert_eq!(pids.len(), 2);
}

#[test]
fn exec_process_file() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    start(&c);
    let p = c.dir.join("process.json");
    std::fs::write(&p, r#"{"args": ["/bin/probe", "exit", "9"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}"#).unwrap();
    assert_eq!(c.rt(&["exec", "--process", p.to_str().unwrap(), &c.id]).code, 9);
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["exit", "0"]);
    c.rt(&["run", "--keep", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    let o = c.rt(&["exec", &c.id, "/bin/true"]);
    assert_ne!(o.code, 0);
}

//! The container lifecycle through the command line: create, state, start, kill, delete, list, run
//! exit codes, two creates of one id, delete of a running container, hooks, pause/resume.

use std::time::Duration;

use berth_e2e::{env, Container};
use serde_json::json;

#[test]
fn create_start_kill_delete() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    c.create().ok();
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], c.id.as_str());
    let pid = st["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let list = c.rt(&["list"]);
    assert!(list.stdout.starts_with("ID "), "{}", list.stdout);
    assert!(list.stdout.contains(&c.id) && list.stdout.contains("created"));
    c.rt(&["start", &c.id]).ok();
    assert_eq!(c.status(), "running");
    let json_list: serde_json::Value =
        serde_json::from_str(&c.rt(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(json_list[0]["id"], c.id.as_str());
    assert_eq!(json_list[0]["status"], "running");
    assert_eq!(c.rt(&["list", "-q"]).stdout.trim(), c.id);
    c.rt(&["kill", &c.id, "KILL"]).ok();
    assert_eq!(c.wait_status("stopped", Duration::from_secs(5)), "stopped");
    c.rt(&["delete", &c.id]).ok();
    assert!(!c.state_left());
    assert!(c.cgroup_dirs().is_empty(), "cgroup left: {:?}", c.cgroup_dirs());
    let gone = c.rt(&["state", &c.id]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("does not exist"), "{}", gone.stderr);
}

#[test]
fn run_exit_codes_and_signals() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["exit", "3"]);
    assert_eq!(c.run().code, 3);
    assert!(!c.state_left(), "run deletes the container afterwards");
    // Killed by signal N: `run` exits with 128 + N.
    let c = Container::new(&e, &["sleep", "60"]);
    let mut child = c.spawn(&["run", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    assert_eq!(c.wait_status("running", Duration::from_secs(10)), "running");
    c.rt(&["kill", &c.id, "KILL"]).ok();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
}

#[test]
fn run_detach() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    c.rt(&["run", "--detach", "--bundle", c.bundle.to_str().unwrap(), &c.id])
        .ok();
    assert_eq!(c.status(), "running");
    let refused = c.rt(&["delete", &c.id]);
    assert_eq!(refused.code, 1, "delete of a running container needs --force");
    assert_eq!(c.status(), "running");
    c.rt(&["delete", "--force", &c.id]).ok();
    assert!(!c.state_left());
}

#[test]
fn second_create_with_the_same_id_fails_and_keeps_the_first() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    c.create().ok();
    let pid = c.state()["pid"].clone();
    let again = c.create();
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("exists"), "{}", again.stderr);
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    c.rt(&["start", &c.id]).ok();
    assert_eq!(c.status(), "running");
}

#[test]
fn kill_by_name_number_and_all() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    c.rt(&["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id])
        .ok();
    let bad = c.rt(&["kill", &c.id, "NOTASIGNAL"]);
    assert_eq!(bad.code, 1);
    c.rt(&["kill", "--all", &c.id, "9"]).ok();
    assert_eq!(c.wait_status("stopped", Duration::from_secs(5)), "stopped");
    let again = c.rt(&["kill", &c.id, "SIGKILL"]);
    assert_eq!(again.code, 1, "kill of a stopped container fails");
}

#[test]
fn pause_and_resume() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    c.rt(&["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id])
        .ok();
    c.rt(&["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    c.rt(&["resume", &c.id]).ok();
    assert_eq!(c.status(), "running");
}

#[test]
fn hooks_see_the_state() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["exit", "0"]);
    let hook = |name: &str| {
        let out = c.dir.join(format!("{name}.json"));
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]})
    };
    let (pre, post, stop) = (hook("prestart"), hook("poststart"), hook("poststop"));
    c.config["hooks"] = json!({"prestart": [pre], "poststart": [post], "poststop": [stop]});
    c.write_config();
    c.run().ok();
    for (name, status) in [
        ("prestart", "creating"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let text = std::fs::read_to_string(c.dir.join(format!("{name}.json"))).unwrap_or_default();
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{name} hook state: {text:?}"));
        assert_eq!(v["id"], c.id.as_str(), "{name}");
        if e.is_berth() {
            assert_eq!(v["status"], status, "{name}");
        }
    }
}

#[test]
fn failing_prestart_hook_fails_create_and_leaves_nothing() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["sleep", "60"]);
    c.config["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]});
    c.write_config();
    let o = c.create();
    assert_eq!(o.code, 1);
    assert!(!c.state_left());
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn joins_namespaces_by_path() {
    let Some(e) = env() else { return };
    let a = Container::new(&e, &["sleep", "60"]);
    a.rt(&["run", "-d", "--bundle", a.bundle.to_str().unwrap(), &a.id])
        .ok();
    let pid = a.state()["pid"].as_i64().unwrap();
    let mut b = Container::new(&e, &["ns"]);
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        let t = ns["type"].as_str().unwrap().to_string();
        let proc_name = match t.as_str() {
            "network" => "net",
            "ipc" => "ipc",
            "uts" => "uts",
            _ => continue,
        };
        ns["path"] = json!(format!("/proc/{pid}/ns/{proc_name}"));
    }
    b.write_config();
    let o = b.run();
    o.ok();
    for n in ["net", "ipc", "uts"] {
        let host_view = std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
            .unwrap()
            .display()
            .to_string();
        assert_eq!(o.get(n).as_deref(), Some(host_view.as_str()), "{n}");
    }
    let own_pid_ns = std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .unwrap()
        .display()
        .to_string();
    assert_ne!(
        o.get("pid").as_deref(),
        Some(own_pid_ns.as_str()),
        "the pid namespace is new"
    );
}

#[test]
fn no_pivot() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["pid"]);
    let o = c.rt(&["run", "--no-pivot", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    o.ok();
    assert_eq!(o.get("pid").as_deref(), Some("1"));
}

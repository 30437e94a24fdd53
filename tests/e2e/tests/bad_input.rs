//! Bad config.json: a clear error naming the field, exit status 1, and nothing left behind (no state,
//! no cgroup). runc tolerates some of these (unknown capabilities and syscalls, escaping mount
//! destinations, devices outside /dev): those checks hold berth-runtime to the stricter rule.

use berth_e2e::{env, Container};
use serde_json::{json, Value};

fn refused(c: &Container, field: &str) {
    let o = c.create();
    assert_eq!(o.code, 1, "create should fail: {o:?}");
    if c.env.is_berth() {
        assert!(
            o.stderr.contains(field),
            "the error should name {field}: {}",
            o.stderr
        );
    }
    assert!(!c.state_left(), "state left behind");
    assert!(
        c.cgroup_dirs().is_empty(),
        "cgroup left behind: {:?}",
        c.cgroup_dirs()
    );
}

fn case(edit: impl Fn(&mut Value), field: &str, strict: bool) {
    let Some(e) = env() else { return };
    if strict && !e.is_berth() {
        eprintln!("skipped for {}: it accepts this config", e.kind);
        return;
    }
    let mut c = Container::new(&e, &["sleep", "60"]);
    edit(&mut c.config);
    c.write_config();
    refused(&c, field);
}

#[test]
fn not_json() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    std::fs::write(c.bundle.join("config.json"), "{ not json").unwrap();
    refused(&c, "config.json");
}

#[test]
fn unknown_namespace() {
    case(
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "bogus"}))
        },
        "linux.namespaces",
        false,
    );
}

#[test]
fn duplicate_namespace() {
    case(
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "pid"}))
        },
        "linux.namespaces",
        false,
    );
}

#[test]
fn mount_destination_escaping() {
    case(
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/../../../tmp/evil", "type": "tmpfs", "source": "tmpfs"}))
        },
        "mounts[7].destination",
        true,
    );
}

#[test]
fn mount_destination_through_an_escaping_symlink() {
    let Some(e) = env() else { return };
    if !e.is_berth() {
        eprintln!("skipped for {}: it resolves the link inside the rootfs", e.kind);
        return;
    }
    let mut c = Container::new(&e, &["sleep", "60"]);
    std::os::unix::fs::symlink("../../../../../tmp", c.bundle.join("rootfs/evil")).unwrap();
    c.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"}));
    c.write_config();
    refused(&c, "escapes");
    assert!(!std::path::Path::new("/tmp/x").exists());
}

#[test]
fn device_outside_dev() {
    case(
        |c| c["linux"]["devices"] = json!([{"type": "c", "path": "/etc/evil", "major": 1, "minor": 3}]),
        "linux.devices[0].path",
        true,
    );
}

#[test]
fn unknown_capability() {
    case(
        |c| {
            c["process"]["capabilities"]["bounding"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_BOGUS"))
        },
        "CAP_BOGUS",
        true,
    );
}

#[test]
fn unknown_syscall() {
    case(
        |c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["bogus_call"], "action": "SCMP_ACT_ERRNO"}]}),
        "bogus_call",
        true,
    );
}

#[test]
fn uid_mapping_that_does_not_fit() {
    case(
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 4294967290u64, "size": 100}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
        },
        "linux.uidMappings[0]",
        false,
    );
}

#[test]
fn command_not_found() {
    case(
        |c| c["process"]["args"] = json!(["/no/such/program"]),
        "/no/such/program",
        false,
    );
}

#[test]
fn root_path_escaping_the_bundle() {
    case(|c| c["root"]["path"] = json!("../.."), "root.path", true);
}

#[test]
fn errors_reach_the_json_log() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["sleep", "60"]);
    c.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    c.write_config();
    let log = c.dir.join("runtime.log");
    let o = c.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        c.bundle.to_str().unwrap(),
        &c.id,
    ]);
    assert_eq!(o.code, 1);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let line: Value = serde_json::from_str(text.lines().last().unwrap_or("")).unwrap_or(Value::Null);
    assert_eq!(line["level"], "error", "{text}");
    assert!(line["msg"].as_str().unwrap_or("").contains("bogus"), "{text}");
}

//! Isolation seen from inside with the probe: pid namespace, hostname, mounts, masked and read-only
//! paths, capabilities, seccomp, user namespace, process attributes.

use berth_e2e::{env, Container};
use serde_json::json;

#[test]
fn own_pid_namespace_and_hostname() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["pid"]);
    let o = c.run();
    o.ok();
    assert_eq!(o.get("pid").as_deref(), Some("1"));
    assert_eq!(o.get("ppid").as_deref(), Some("0"));
    let mut c = Container::new(&e, &["hostname"]);
    c.config["hostname"] = json!("probe-host");
    c.config["domainname"] = json!("probe.example");
    c.write_config();
    let o = c.run();
    o.ok();
    assert_eq!(o.get("hostname").as_deref(), Some("probe-host"));
    if e.is_berth() {
        // runc 1.1 ignores domainname (it arrived in runc 1.2).
        assert_eq!(o.get("domainname").as_deref(), Some("probe.example"));
    }
}

#[test]
fn no_host_mounts_visible() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["mounts"]);
    let o = c.run();
    o.ok();
    let allowed = [
        "/",
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ];
    let masked: Vec<String> = c.config["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .chain(c.config["linux"]["readonlyPaths"].as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for m in o.stdout.lines().filter_map(|l| l.strip_prefix("mount=")) {
        let ok = allowed.contains(&m) || m.starts_with("/sys/fs/cgroup/") || masked.iter().any(|p| p == m);
        assert!(ok, "unexpected mount {m} in the container:\n{}", o.stdout);
    }
}

#[test]
fn masked_paths_are_empty_and_readonly_paths_refuse_writes() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["read", "/proc/timer_list"]);
    let o = c.run();
    assert_eq!(o.get("bytes").as_deref(), Some("0"), "{}", o.stdout);
    let c = Container::new(&e, &["readdir", "/proc/acpi"]);
    let o = c.run();
    if o.get("readdir").as_deref() == Some("ok") {
        assert_eq!(o.get("entries").as_deref(), Some("0"));
    }
    let c = Container::new(&e, &["write", "/proc/sys/kernel/hostname"]);
    assert_eq!(c.run().get("write").as_deref(), Some("EROFS"));
    if std::path::Path::new("/proc/sysrq-trigger").exists() {
        let c = Container::new(&e, &["write", "/proc/sysrq-trigger"]);
        assert_eq!(c.run().get("write").as_deref(), Some("EROFS"));
    }
}

#[test]
fn readonly_root() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["write", "/etc/x"]);
    c.config["root"]["readonly"] = json!(true);
    c.write_config();
    assert_eq!(c.run().get("write").as_deref(), Some("EROFS"));
}

#[test]
fn capabilities_exactly_as_configured() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["caps"]);
    let set = json!(["CAP_CHOWN", "CAP_KILL"]);
    c.config["process"]["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set, "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]});
    c.config["process"]["noNewPrivileges"] = json!(true);
    c.write_config();
    let o = c.run();
    o.ok();
    assert_eq!(o.get("CapBnd").as_deref(), Some("0000000000000021"));
    assert_eq!(o.get("CapEff").as_deref(), Some("0000000000000021"));
    assert_eq!(o.get("CapPrm").as_deref(), Some("0000000000000021"));
    assert_eq!(o.get("CapInh").as_deref(), Some("0000000000000020"));
    assert_eq!(o.get("CapAmb").as_deref(), Some("0000000000000020"));
    assert_eq!(o.get("NoNewPrivs").as_deref(), Some("1"));
}

#[test]
fn seccomp_errno() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["getcwd"]);
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    });
    c.write_config();
    let o = c.run();
    assert_eq!(o.get("errno").as_deref(), Some("38"), "{o:?}");
    let c = Container::new(&e, &["caps"]);
    let o = c.run();
    assert_eq!(o.get("Seccomp").as_deref(), Some("0"), "no profile, no filter");
}

#[test]
fn user_namespace_mappings() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["uidmap"]);
    c.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    c.write_config();
    let o = c.run();
    o.ok();
    assert_eq!(o.get("uid_map").as_deref(), Some("0 100000 65536"));
    assert_eq!(o.get("gid_map").as_deref(), Some("0 200000 65536"));
}

#[test]
fn user_env_cwd_rlimits_umask() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["id"]);
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7]});
    c.write_config();
    let o = c.run();
    o.ok();
    assert_eq!(o.get("uid").as_deref(), Some("1000"));
    assert_eq!(o.get("gid").as_deref(), Some("1001"));
    assert_eq!(o.get("groups").as_deref(), Some("5,7"));
    let mut c = Container::new(&e, &["env"]);
    c.config["process"]["env"] = json!(["PATH=/bin", "HELLO=world"]);
    c.write_config();
    assert_eq!(c.run().get("env.HELLO").as_deref(), Some("world"));
    let mut c = Container::new(&e, &["cwd"]);
    c.config["process"]["cwd"] = json!("/tmp");
    c.write_config();
    assert_eq!(c.run().get("cwd").as_deref(), Some("/tmp"));
    let mut c = Container::new(&e, &["rlimit"]);
    c.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
    c.write_config();
    let o = c.run();
    assert_eq!(o.get("nofile_soft").as_deref(), Some("123"));
    assert_eq!(o.get("nofile_hard").as_deref(), Some("456"));
    let mut c = Container::new(&e, &["umask"]);
    c.config["process"]["user"]["umask"] = json!(0o027);
    c.write_config();
    assert_eq!(c.run().get("umask").as_deref(), Some("0027"));
}

#[test]
fn time_namespace_offsets() {
    let Some(e) = env() else { return };
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: this kernel has no time namespaces");
        return;
    }
    if !e.is_berth() {
        eprintln!(
            "skipped for {}: runc 1.1 does not know the time namespace",
            e.kind
        );
        return;
    }
    let mut c = Container::new(&e, &["uptime"]);
    c.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    c.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1_000_000, "nanosecs": 0}});
    c.write_config();
    let o = c.run();
    o.ok();
    let up: u64 = o.get("uptime").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(
        up >= 1_000_000,
        "uptime {up} does not include the boottime offset"
    );
}

#[test]
fn seccomp_notify_descriptor_reaches_the_listener() {
    let Some(e) = env() else { return };
    if !e.is_berth() {
        eprintln!(
            "skipped for {}: runc 1.1 needs a newer libseccomp for listeners here",
            e.kind
        );
        return;
    }
    let mut c = Container::new(&e, &["pid"]);
    let sock = c.dir.join("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let got = std::thread::spawn(move || {
        let (conn, _) = listener.accept().ok()?;
        let mut buf = vec![0u8; 65536];
        let (n, fd) = berth_sys::recv_fd(std::os::fd::AsFd::as_fd(&conn), &mut buf).ok()?;
        Some((String::from_utf8_lossy(&buf[..n]).into_owned(), fd.is_some()))
    });
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock.to_str().unwrap(),
        "listenerMetadata": "probe-meta",
        "syscalls": [{"names": ["mknodat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    c.write_config();
    let o = c.run();
    o.ok();
    assert_eq!(o.get("pid").as_deref(), Some("1"));
    let (doc, had_fd) = got.join().unwrap().expect("the listener got nothing");
    assert!(had_fd, "no descriptor attached");
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["fds"], json!(["seccompFd"]));
    assert_eq!(v["metadata"], "probe-meta");
    assert!(v["pid"].as_i64().unwrap_or(0) > 0);
    assert_eq!(v["state"]["id"], c.id.as_str());
}

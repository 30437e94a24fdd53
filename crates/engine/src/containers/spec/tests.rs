//! HostConfig -> OCI spec: goldens for whole specs (regenerate with BERTH_UPDATE_GOLDEN=1 and review
//! the diff), and docker's rules checked one by one.

use std::path::Path;

use berth_image::manifest::RunConfig;

use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn busybox() -> RunConfig {
    RunConfig {
        cmd: Some(vec!["sh".into()]),
        env: Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ]),
        ..Default::default()
    }
}

fn users(name: &str) -> Option<(u32, u32)> {
    match name {
        "root" => Some((0, 0)),
        "nobody" => Some((65534, 65534)),
        "1000" => Some((1000, 1000)),
        _ => None,
    }
}

fn groups(name: &str) -> Option<u32> {
    match name {
        "root" => Some(0),
        "audio" => Some(29),
        _ => None,
    }
}

fn compose_with(image: &RunConfig, cfg: &Config, host: &HostConfig) -> Result<oci::Spec, Error> {
    let ctx = Context {
        id: ID,
        rootfs: "/var/lib/berth/containers/x/rootfs",
        cgroup_v2: true,
        user: &users,
        group: &groups,
        groups_of: &|_, _| Vec::new(),
        container_pid: &|n| (n == "web").then_some(4242),
        host_device: &|p| {
            (p == "/dev/fuse").then(|| HostDevice {
                kind: "c".into(),
                major: 10,
                minor: 229,
                mode: 0o666,
                uid: 0,
                gid: 0,
            })
        },
        default_seccomp: false,
    };
    compose(image, cfg, host, &ctx)
}

fn golden(name: &str, spec: &oci::Spec) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/containers/spec/golden")
        .join(name);
    let got = serde_json::to_string_pretty(spec).unwrap() + "\n";
    if std::env::var("BERTH_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: BERTH_UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        got, want,
        "{name} differs from the golden (BERTH_UPDATE_GOLDEN=1 to accept, then review)"
    );
}

#[test]
fn golden_default_busybox() {
    let spec = compose_with(&busybox(), &Config::default(), &HostConfig::default()).unwrap();
    golden("default.json", &spec);
    let p = spec.process.as_ref().unwrap();
    assert_eq!(p.args, vec!["sh"]);
    assert_eq!(p.cwd, "/");
    assert_eq!(spec.hostname.as_deref(), Some(&ID[..12]));
    assert_eq!(
        p.capabilities.as_ref().unwrap().bounding.as_ref().unwrap().len(),
        14
    );
    let l = spec.linux.as_ref().unwrap();
    assert_eq!(l.masked_paths.len(), MASKED_PATHS.len());
    assert!(
        l.namespaces.iter().any(|n| n.typ == "cgroup"),
        "private cgroupns on v2"
    );
    let shm = spec.mounts.iter().find(|m| m.destination == "/dev/shm").unwrap();
    assert!(shm.options.as_ref().unwrap().contains(&"size=65536k".to_string()));
}

#[test]
fn golden_limits_and_options() {
    let cfg = Config {
        user: "nobody".into(),
        env: Some(vec!["A=1".into(), "PATH=/bin".into(), "UNSET".into()]),
        entrypoint: Some(vec!["/bin/echo".into()]),
        cmd: Some(vec!["hi".into()]),
        working_dir: "/tmp".into(),
        tty: true,
        hostname: "box".into(),
        ..Default::default()
    };
    let host = HostConfig {
        cap_add: Some(vec!["net_admin".into()]),
        cap_drop: Some(vec!["CAP_MKNOD".into(), "chown".into()]),
        readonly_rootfs: true,
        memory: 256 << 20,
        nano_cpus: 500_000_000,
        cpu_shares: 512,
        pids_limit: Some(100),
        blkio_weight: 300,
        ulimits: Some(vec![Ulimit {
            name: "nproc".into(),
            soft: 64,
            hard: 128,
        }]),
        tmpfs: Some(
            [("/run".to_string(), "rw,size=64m".to_string())]
                .into_iter()
                .collect(),
        ),
        shm_size: 128 << 20,
        pid_mode: "host".into(),
        security_opt: Some(vec!["no-new-privileges".into()]),
        sysctls: Some(
            [("net.ipv4.ip_forward".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        ),
        devices: Some(vec![DeviceMapping {
            path_on_host: "/dev/fuse".into(),
            path_in_container: "/dev/fuse".into(),
            cgroup_permissions: "rwm".into(),
        }]),
        group_add: Some(vec!["audio".into()]),
        ..Default::default()
    };
    let spec = compose_with(&busybox(), &cfg, &host).unwrap();
    golden("limits.json", &spec);
    let p = spec.process.as_ref().unwrap();
    assert_eq!(p.args, vec!["/bin/echo", "hi"]);
    assert_eq!((p.user.uid, p.user.gid), (65534, 65534));
    assert_eq!(p.user.additional_gids, vec![29]);
    assert!(p.env.contains(&"PATH=/bin".to_string()) && p.env.contains(&"TERM=xterm".to_string()));
    assert!(!p.env.iter().any(|e| e.starts_with("UNSET")));
    assert!(p.no_new_privileges);
    let caps = p.capabilities.as_ref().unwrap();
    assert!(
        caps.effective.as_ref().unwrap().is_empty(),
        "a non-root user has no effective caps"
    );
    let b = caps.bounding.as_ref().unwrap();
    assert!(b.contains(&"CAP_NET_ADMIN".to_string()) && !b.contains(&"CAP_MKNOD".to_string()));
    let l = spec.linux.as_ref().unwrap();
    assert!(!l.namespaces.iter().any(|n| n.typ == "pid"), "--pid host");
    let r = l.resources.as_ref().unwrap();
    assert_eq!(r.cpu.as_ref().unwrap().quota, Some(50_000));
    assert_eq!(
        r.memory.as_ref().unwrap().swap,
        Some(512 << 20),
        "swap defaults to twice the memory"
    );
    assert!(spec.root.as_ref().unwrap().readonly);
}

#[test]
fn privileged_has_everything_and_no_masks() {
    let host = HostConfig {
        privileged: true,
        ..Default::default()
    };
    let spec = compose_with(&busybox(), &Config::default(), &host).unwrap();
    let caps = spec.process.as_ref().unwrap().capabilities.as_ref().unwrap();
    assert_eq!(caps.bounding.as_ref().unwrap().len(), ALL_CAPS.len());
    let l = spec.linux.as_ref().unwrap();
    assert!(l.masked_paths.is_empty() && l.readonly_paths.is_empty());
    assert!(l.resources.as_ref().unwrap().devices[0].allow);
    let sys = spec.mounts.iter().find(|m| m.destination == "/sys").unwrap();
    assert!(sys.options.as_ref().unwrap().contains(&"rw".to_string()));
}

#[test]
fn capability_rules_as_docker() {
    let caps = |add: &[&str], drop: &[&str]| {
        capabilities(&HostConfig {
            cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
            cap_drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        })
    };
    assert_eq!(caps(&["ALL"], &[]).unwrap().len(), ALL_CAPS.len());
    assert_eq!(caps(&[], &["ALL"]).unwrap(), Vec::<String>::new());
    assert_eq!(caps(&["NET_ADMIN"], &["ALL"]).unwrap(), vec!["CAP_NET_ADMIN"]);
    assert_eq!(
        caps(&["chown"], &["chown"])
            .unwrap()
            .iter()
            .filter(|c| *c == "CAP_CHOWN")
            .count(),
        1,
        "add wins"
    );
    let e = caps(&["CAP_FOO"], &[]).unwrap_err().to_string();
    assert_eq!(e, "invalid CapAdd: unknown capability: \"CAP_FOO\"");
    let e = caps(&[], &["bogus"]).unwrap_err().to_string();
    assert_eq!(e, "invalid CapDrop: unknown capability: \"CAP_BOGUS\"");
}

#[test]
fn commands_users_and_bad_values() {
    let img = RunConfig {
        entrypoint: Some(vec!["/entry".into()]),
        cmd: Some(vec!["default".into()]),
        user: Some("nobody".into()),
        working_dir: Some("/srv".into()),
        ..Default::default()
    };
    let s = compose_with(&img, &Config::default(), &HostConfig::default()).unwrap();
    let p = s.process.unwrap();
    assert_eq!(p.args, vec!["/entry", "default"]);
    assert_eq!(p.cwd, "/srv");
    assert_eq!(p.user.uid, 65534);
    // A new entrypoint drops the image's command.
    let cfg = Config {
        entrypoint: Some(vec!["/other".into()]),
        ..Default::default()
    };
    assert_eq!(
        compose_with(&img, &cfg, &HostConfig::default())
            .unwrap()
            .process
            .unwrap()
            .args,
        vec!["/other"]
    );
    // Numeric users without a passwd entry get gid 0; names must exist.
    let cfg = Config {
        user: "4321".into(),
        ..Default::default()
    };
    let u = compose_with(&busybox(), &cfg, &HostConfig::default())
        .unwrap()
        .process
        .unwrap()
        .user;
    assert_eq!((u.uid, u.gid), (4321, 0));
    let cfg = Config {
        user: "ghost".into(),
        ..Default::default()
    };
    let e = compose_with(&busybox(), &cfg, &HostConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unable to find user ghost"), "{e}");
    let none = RunConfig::default();
    assert_eq!(
        compose_with(&none, &Config::default(), &HostConfig::default())
            .unwrap_err()
            .to_string(),
        "no command specified"
    );
    let bad = |h: HostConfig| {
        compose_with(&busybox(), &Config::default(), &h)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        bad(HostConfig {
            memory: 1 << 20,
            ..Default::default()
        }),
        "Minimum memory limit allowed is 6MB"
    );
    assert!(bad(HostConfig {
        nano_cpus: -1,
        ..Default::default()
    })
    .contains("must be positive"));
    assert!(bad(HostConfig {
        nano_cpus: 1_000_000_000_000,
        ..Default::default()
    })
    .contains("range of CPUs"));
    assert!(bad(HostConfig {
        blkio_weight: 5,
        ..Default::default()
    })
    .contains("blkio weight"));
    assert!(bad(HostConfig {
        ulimits: Some(vec![Ulimit {
            name: "bogus".into(),
            soft: 1,
            hard: 1
        }]),
        ..Default::default()
    })
    .contains("invalid ulimit type"));
    assert!(bad(HostConfig {
        security_opt: Some(vec!["bogus=1".into()]),
        ..Default::default()
    })
    .contains("invalid --security-opt"));
    assert!(bad(HostConfig {
        pid_mode: "container:gone".into(),
        ..Default::default()
    })
    .contains("non running container"));
    assert!(bad(HostConfig {
        devices: Some(vec![DeviceMapping {
            path_on_host: "/dev/nope".into(),
            ..Default::default()
        }]),
        ..Default::default()
    })
    .contains("/dev/nope"));
    let cfg = Config {
        working_dir: "relative".into(),
        ..Default::default()
    };
    assert!(compose_with(&busybox(), &cfg, &HostConfig::default())
        .unwrap_err()
        .to_string()
        .contains("absolute path"));
}

#[test]
fn joined_namespaces_and_seccomp_options() {
    let host = HostConfig {
        network_mode: "container:web".into(),
        ipc_mode: "host".into(),
        security_opt: Some(vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()]),
        ..Default::default()
    };
    let s = compose_with(&busybox(), &Config::default(), &host).unwrap();
    let l = s.linux.unwrap();
    let net = l.namespaces.iter().find(|n| n.typ == "network").unwrap();
    assert_eq!(net.path.as_deref(), Some("/proc/4242/ns/net"));
    assert!(!l.namespaces.iter().any(|n| n.typ == "ipc"));
    assert!(
        !s.mounts.iter().any(|m| m.destination == "/dev/shm"),
        "--ipc host shares the host's /dev/shm"
    );
    assert!(l.seccomp.is_none());
    let host = HostConfig {
        security_opt: Some(vec![r#"seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#.into()]),
        ..Default::default()
    };
    let s = compose_with(&busybox(), &Config::default(), &host).unwrap();
    assert_eq!(s.linux.unwrap().seccomp.unwrap().default_action, "SCMP_ACT_ERRNO");
    let host = HostConfig {
        security_opt: Some(vec!["seccomp={broken".into()]),
        ..Default::default()
    };
    assert!(compose_with(&busybox(), &Config::default(), &host)
        .unwrap_err()
        .to_string()
        .contains("decoding seccomp profile"));
}

/// What is composed is what berth-runtime accepts: every golden plans without an error.
#[test]
fn composed_specs_pass_the_runtime_planner() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("rootfs")).unwrap();
    for name in ["default.json", "limits.json"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/containers/spec/golden")
            .join(name);
        let mut spec: oci::Spec = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        spec.root.as_mut().unwrap().path = "rootfs".into();
        if let Err(e) = berth_runtime::plan::plan("golden", t.path(), &spec) {
            panic!("{name}: berth-runtime refuses the composed spec: {e}");
        }
    }
}

#[test]
fn the_default_seccomp_profile_follows_the_capabilities() {
    let ctx = |on: bool| Context {
        id: ID,
        rootfs: "/r",
        cgroup_v2: false,
        user: &users,
        group: &groups,
        groups_of: &|_, _| Vec::new(),
        container_pid: &|_| None,
        host_device: &|_| None,
        default_seccomp: on,
    };
    let allows = |s: &oci::Spec, name: &str| {
        s.linux
            .as_ref()
            .unwrap()
            .seccomp
            .as_ref()
            .unwrap()
            .syscalls
            .iter()
            .any(|r| r.action == "SCMP_ACT_ALLOW" && r.args.is_empty() && r.names.iter().any(|n| n == name))
    };
    let plain = compose(&busybox(), &Config::default(), &HostConfig::default(), &ctx(true)).unwrap();
    assert!(allows(&plain, "read") && !allows(&plain, "mount"));
    let admin = HostConfig {
        cap_add: Some(vec!["SYS_ADMIN".into()]),
        ..Default::default()
    };
    let s = compose(&busybox(), &Config::default(), &admin, &ctx(true)).unwrap();
    assert!(allows(&s, "mount"));
    let privileged = HostConfig {
        privileged: true,
        ..Default::default()
    };
    let s = compose(&busybox(), &Config::default(), &privileged, &ctx(true)).unwrap();
    assert!(
        s.linux.unwrap().seccomp.is_none(),
        "--privileged runs without a filter"
    );
    let s = compose(
        &busybox(),
        &Config::default(),
        &HostConfig::default(),
        &ctx(false),
    )
    .unwrap();
    assert!(s.linux.unwrap().seccomp.is_none());
}

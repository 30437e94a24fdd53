//! The default config.json that `berth-runtime spec` writes: the same document as `runc spec`, so that
//! tools and people who start from runc's template get what they expect.

use berth_spec::{
    Capabilities, DeviceCgroup, IdMapping, Linux, Mount, Namespace, Process, Resources, Rlimit, Root, Spec,
    User,
};

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        typ: Some(typ.into()),
        source: Some(source.into()),
        options: if options.is_empty() {
            None
        } else {
            Some(strings(options))
        },
        ..Default::default()
    }
}

/// runc's example spec. `cgroup_ns` adds a cgroup namespace (runc does on a pure cgroup v2 host).
pub fn default_spec(cgroup_ns: bool) -> Spec {
    let caps = strings(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut namespaces: Vec<Namespace> = ["pid", "network", "ipc", "uts", "mount"]
        .iter()
        .map(|t| Namespace {
            typ: t.to_string(),
            path: None,
        })
        .collect();
    if cgroup_ns {
        namespaces.push(Namespace {
            typ: "cgroup".into(),
            path: None,
        });
    }
    Spec {
        oci_version: berth_spec::OCI_VERSION.into(),
        process: Some(Process {
            terminal: true,
            user: User::default(),
            args: strings(&["sh"]),
            env: strings(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ]),
            cwd: "/".into(),
            capabilities: Some(Capabilities {
                bounding: Some(caps.clone()),
                effective: Some(caps.clone()),
                permitted: Some(caps),
                ..Default::default()
            }),
            rlimits: vec![Rlimit {
                typ: "RLIMIT_NOFILE".into(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
            ..Default::default()
        }),
        root: Some(Root {
            path: "rootfs".into(),
            readonly: true,
        }),
        hostname: Some("runc".into()),
        mounts: vec![
            mount("/proc", "proc", "proc", &[]),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ],
        linux: Some(Linux {
            masked_paths: strings(&[
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
                "/sys/devices/virtual/tpm",
            ]),
            readonly_paths: strings(&[
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]),
            resources: Some(Resources {
                devices: vec![DeviceCgroup {
                    allow: false,
                    access: Some("rwm".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            namespaces,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// runc's `spec --rootless` changes: a user namespace mapping the caller's ids to root, no network
/// namespace, /sys bind-mounted, no uid=/gid= mount options, no resources.
pub fn make_rootless(spec: &mut Spec, uid: u32, gid: u32) {
    let linux = spec.linux.get_or_insert_with(Default::default);
    linux.namespaces.retain(|n| n.typ != "network" && n.typ != "user");
    linux.namespaces.push(Namespace {
        typ: "user".into(),
        path: None,
    });
    linux.uid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: uid,
        size: 1,
    }];
    linux.gid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: gid,
        size: 1,
    }];
    linux.resources = None;
    for m in spec.mounts.iter_mut() {
        if m.destination.trim_end_matches('/') == "/sys" {
            *m = mount(
                "/sys",
                "none",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
            continue;
        }
        if let Some(opts) = m.options.as_mut() {
            opts.retain(|o| !o.starts_with("uid=") && !o.starts_with("gid="));
        }
    }
}

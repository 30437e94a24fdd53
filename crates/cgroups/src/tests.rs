//! Planning tests and create/destroy against a fake cgroupfs in a temp directory.

use std::fs;
use std::path::Path;

use berth_spec::{BlockIo, Cpu, DeviceCgroup, Memory, Pids, Resources, ThrottleDevice};

use super::*;

#[test]
fn cgroups_path_rules() {
    assert_eq!(cgroup_path(Some("/a/b"), "c1", "/user", false).unwrap(), "/a/b");
    assert_eq!(
        cgroup_path(Some("x/y"), "c1", "/user", false).unwrap(),
        "/user/x/y"
    );
    assert_eq!(cgroup_path(None, "c1", "/user", false).unwrap(), "/user/c1");
    assert_eq!(cgroup_path(Some(""), "c1", "/", false).unwrap(), "/c1");
    assert!(cgroup_path(Some("/../../x"), "c1", "/", false)
        .unwrap_err()
        .to_string()
        .contains("linux.cgroupsPath"));
    assert!(matches!(
        cgroup_path(Some("system.slice:berth:c1"), "c1", "/", false),
        Err(Error::Systemd)
    ));
    assert!(matches!(cgroup_path(None, "c1", "/", true), Err(Error::Systemd)));
}

fn resources() -> Resources {
    Resources {
        memory: Some(Memory {
            limit: Some(100 << 20),
            swap: Some(200 << 20),
            reservation: Some(50 << 20),
            ..Default::default()
        }),
        cpu: Some(Cpu {
            shares: Some(1024),
            quota: Some(50_000),
            period: Some(100_000),
            cpus: Some("0".into()),
            ..Default::default()
        }),
        pids: Some(Pids { limit: 20 }),
        block_io: Some(BlockIo {
            weight: Some(500),
            throttle_read_bps_device: vec![ThrottleDevice {
                major: 8,
                minor: 0,
                rate: 1000,
            }],
            ..Default::default()
        }),
        devices: vec![
            DeviceCgroup {
                allow: false,
                access: Some("rwm".into()),
                ..Default::default()
            },
            DeviceCgroup {
                allow: true,
                typ: Some("c".into()),
                major: Some(1),
                minor: Some(3),
                access: Some("rwm".into()),
            },
        ],
        ..Default::default()
    }
}

/// A fake v2 tree: the root offers some controllers.
fn fake_v2(root: &Path) -> Hierarchy {
    fs::write(root.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    Hierarchy::V2 {
        mountpoint: root.to_path_buf(),
        root: "/".into(),
        own: "/".into(),
    }
}

#[test]
fn v2_golden_writes() {
    let t = tempfile::tempdir().unwrap();
    let h = fake_v2(t.path());
    let p = plan(&h, Some("/berth/c1"), "c1", Some(&resources()), false).unwrap();
    let rel: Vec<(String, String)> = p
        .writes()
        .iter()
        .map(|(f, v)| (f.strip_prefix(t.path()).unwrap().display().to_string(), v.clone()))
        .collect();
    let want = [
        ("berth/c1/cpuset.cpus", "0"),
        ("berth/c1/memory.low", "52428800"),
        ("berth/c1/memory.swap.max", "104857600"),
        ("berth/c1/memory.max", "104857600"),
        ("berth/c1/cpu.weight", "39"),
        ("berth/c1/cpu.max", "50000 100000"),
        ("berth/c1/pids.max", "20"),
        ("berth/c1/io.weight", "default 4950"),
        ("berth/c1/io.max", "8:0 rbps=1000"),
    ];
    assert_eq!(
        rel,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    assert!(p.device_rules.is_some());
}

#[test]
fn v2_unified_map_wins_and_is_checked() {
    let t = tempfile::tempdir().unwrap();
    let h = fake_v2(t.path());
    let mut r = Resources {
        pids: Some(Pids { limit: 5 }),
        ..Default::default()
    };
    r.unified = Some(
        [
            ("pids.max".to_string(), "7".to_string()),
            ("memory.high".to_string(), "1000".to_string()),
        ]
        .into(),
    );
    let p = plan(&h, None, "c1", Some(&r), false).unwrap();
    let files: Vec<String> = p
        .writes()
        .iter()
        .map(|(f, v)| format!("{}={v}", f.file_name().unwrap().to_string_lossy()))
        .collect();
    assert_eq!(files, vec!["memory.high=1000", "pids.max=7"]);
    r.unified = Some([("../evil".to_string(), "1".to_string())].into());
    assert!(plan(&h, None, "c1", Some(&r), false)
        .unwrap_err()
        .to_string()
        .contains("linux.resources.unified"));
}

#[test]
fn v2_create_enables_controllers_and_destroy_removes_only_its_dirs() {
    let t = tempfile::tempdir().unwrap();
    let h = fake_v2(t.path());
    fs::create_dir(t.path().join("shared")).unwrap();
    let r = Resources {
        pids: Some(Pids { limit: 9 }),
        ..Default::default()
    };
    let p = plan(&h, Some("/shared/c1"), "c1", Some(&r), false).unwrap();
    let cg = p.create().unwrap();
    assert_eq!(
        fs::read_to_string(t.path().join("shared/c1/pids.max")).unwrap(),
        "9"
    );
    // The fake subtree_control file receives the last "+ctrl" written.
    assert!(fs::read_to_string(t.path().join("cgroup.subtree_control"))
        .unwrap()
        .starts_with('+'));
    assert_eq!(cg.v2_path().unwrap(), t.path().join("shared/c1"));
    cg.destroy().unwrap();
    assert!(!t.path().join("shared/c1").exists());
    assert!(
        t.path().join("shared").exists(),
        "a directory the cgroup did not create stays"
    );
}

fn fake_v1(root: &Path) -> Hierarchy {
    let mut mounts = Vec::new();
    for c in [
        "cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio",
    ] {
        let mp = root.join(c);
        fs::create_dir_all(&mp).unwrap();
        if c == "cpuset" {
            fs::write(mp.join("cpuset.cpus"), "0-1\n").unwrap();
            fs::write(mp.join("cpuset.mems"), "0\n").unwrap();
        }
        mounts.push(V1Mount {
            mountpoint: mp,
            root: "/".into(),
            controllers: vec![c.into()],
            own: "/".into(),
        });
    }
    Hierarchy::V1 {
        mounts,
        unified: None,
    }
}

#[test]
fn v1_golden_writes_and_create() {
    let t = tempfile::tempdir().unwrap();
    let h = fake_v1(t.path());
    let p = plan(&h, None, "c1", Some(&resources()), false).unwrap();
    let rel: Vec<String> = p
        .writes()
        .iter()
        .map(|(f, v)| format!("{}={v}", f.strip_prefix(t.path()).unwrap().display()))
        .collect();
    assert_eq!(
        rel,
        vec![
            "cpuset/c1/cpuset.cpus=0",
            "devices/c1/devices.deny=a",
            "devices/c1/devices.allow=c 1:3 rwm",
            "memory/c1/memory.limit_in_bytes=104857600",
            "memory/c1/memory.memsw.limit_in_bytes=209715200",
            "memory/c1/memory.soft_limit_in_bytes=52428800",
            "cpu/c1/cpu.shares=1024",
            "cpu/c1/cpu.cfs_period_us=100000",
            "cpu/c1/cpu.cfs_quota_us=50000",
            "pids/c1/pids.max=20",
            "blkio/c1/blkio.weight=500",
            "blkio/c1/blkio.throttle.read_bps_device=8:0 1000",
        ]
    );
    // A fake cpuset child starts with empty cpus/mems, as the kernel's does.
    let r = Resources {
        pids: Some(Pids { limit: 3 }),
        ..Default::default()
    };
    fs::create_dir_all(t.path().join("cpuset/c2")).unwrap();
    fs::write(t.path().join("cpuset/c2/cpuset.cpus"), "").unwrap();
    fs::write(t.path().join("cpuset/c2/cpuset.mems"), "").unwrap();
    let cg = plan(&h, None, "c2", Some(&r), false).unwrap().create().unwrap();
    assert_eq!(
        fs::read_to_string(t.path().join("cpuset/c2/cpuset.cpus")).unwrap(),
        "0-1"
    );
    assert_eq!(
        fs::read_to_string(t.path().join("pids/c2/pids.max")).unwrap(),
        "3"
    );
    assert_eq!(cg.v1_paths().len(), 8);
    cg.destroy().unwrap();
    assert!(!t.path().join("pids/c2").exists());
    assert!(
        t.path().join("cpuset/c2").exists(),
        "cpuset/c2 existed before: not ours to remove"
    );
}

#[test]
fn v1_errors() {
    let t = tempfile::tempdir().unwrap();
    let h = fake_v1(t.path());
    let bad = Resources {
        cpu: Some(Cpu {
            shares: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(plan(&h, None, "c", Some(&bad), false)
        .unwrap_err()
        .to_string()
        .starts_with("linux.resources.cpu.shares:"));
    let swap = Resources {
        memory: Some(Memory {
            limit: Some(100),
            swap: Some(50),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(plan(&h, None, "c", Some(&swap), false)
        .unwrap_err()
        .to_string()
        .starts_with("linux.resources.memory.swap:"));
    let uni = Resources {
        unified: Some([("memory.high".to_string(), "1".to_string())].into()),
        ..Default::default()
    };
    assert!(plan(&h, None, "c", Some(&uni), false).is_err());
    let huge = Resources {
        hugepage_limits: vec![berth_spec::HugepageLimit {
            page_size: "2MB".into(),
            limit: 1,
        }],
        ..Default::default()
    };
    assert!(plan(&h, None, "c", Some(&huge), false)
        .unwrap_err()
        .to_string()
        .contains("hugetlb controller is not mounted"));
    let badsize = Resources {
        hugepage_limits: vec![berth_spec::HugepageLimit {
            page_size: "2XB".into(),
            limit: 1,
        }],
        ..Default::default()
    };
    assert!(plan(&fake_v2(t.path()), None, "c", Some(&badsize), false)
        .unwrap_err()
        .to_string()
        .contains("pageSize"));
}

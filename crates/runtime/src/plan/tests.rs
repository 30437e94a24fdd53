//! Spec -> plan tests on runc's default spec and on broken variants of it.

use std::path::Path;

use super::*;
use crate::defaults::default_spec;

fn plan_of(spec: &Spec) -> Result<Plan, PlanError> {
    plan("c1", Path::new("/bundles/c1"), spec)
}

#[test]
fn default_spec_plans() {
    let p = plan_of(&default_spec(false)).unwrap();
    assert_eq!(
        p.namespaces.new,
        vec![
            NsKind::Pid,
            NsKind::Network,
            NsKind::Ipc,
            NsKind::Uts,
            NsKind::Mount
        ]
    );
    assert_eq!(p.mounts.len(), 7);
    assert_eq!(p.mounts[1].destination, "/dev");
    assert_eq!(p.mounts[1].options.data, "mode=755,size=65536k");
    assert_eq!(p.devices.len(), 6);
    assert!(!p.dev_is_bind);
    assert_eq!(p.hostname.as_deref(), Some("runc"));
    assert!(p.root_readonly);
    assert!(p.process.no_new_privileges);
    assert_eq!(p.process.caps.bounding, (1 << 29) | (1 << 5) | (1 << 10));
}

#[test]
fn missing_root_or_process() {
    let mut s = default_spec(false);
    s.root = None;
    assert_eq!(plan_of(&s).unwrap_err().to_string(), "root: required");
    let mut s = default_spec(false);
    s.process = None;
    assert_eq!(plan_of(&s).unwrap_err().to_string(), "process: required");
}

#[test]
fn root_path_may_not_leave_the_bundle() {
    let mut s = default_spec(false);
    s.root.as_mut().unwrap().path = "rootfs/../../etc".into();
    let e = plan_of(&s).unwrap_err().to_string();
    assert!(e.starts_with("root.path:") && e.contains("escapes"), "{e}");
    s.root.as_mut().unwrap().path = "/abs/rootfs".into();
    assert!(plan_of(&s).is_ok());
}

#[test]
fn bind_sources_are_relative_to_the_bundle() {
    let mut s = default_spec(false);
    s.mounts.push(berth_spec::Mount {
        destination: "/data".into(),
        typ: Some("none".into()),
        source: Some("data".into()),
        options: Some(vec!["rbind".into(), "ro".into()]),
        ..Default::default()
    });
    let p = plan_of(&s).unwrap();
    let m = p.mounts.last().unwrap();
    assert_eq!(m.source, "/bundles/c1/data");
    assert_eq!(m.fstype, "bind");
}

#[test]
fn mount_destination_escape_is_refused() {
    let mut s = default_spec(false);
    s.mounts[6].destination = "/../../../etc".into();
    let e = plan_of(&s).unwrap_err().to_string();
    assert!(e.starts_with("mounts[6].destination:"), "{e}");
}

#[test]
fn devices_must_live_under_dev() {
    let mut s = default_spec(false);
    let dev = berth_spec::Device {
        typ: "c".into(),
        path: "/etc/evil".into(),
        major: 1,
        minor: 3,
        ..Default::default()
    };
    s.linux.as_mut().unwrap().devices.push(dev.clone());
    let e = plan_of(&s).unwrap_err().to_string();
    assert!(
        e.starts_with("linux.devices[0].path:") && e.contains("not under /dev"),
        "{e}"
    );
    let mut s = default_spec(false);
    s.linux.as_mut().unwrap().devices.push(berth_spec::Device {
        path: "/dev/../etc/x".into(),
        ..dev.clone()
    });
    assert!(plan_of(&s).is_err());
    let mut s = default_spec(false);
    s.linux.as_mut().unwrap().devices.push(berth_spec::Device {
        path: "/dev/fuse".into(),
        minor: 229,
        major: 10,
        ..dev
    });
    let p = plan_of(&s).unwrap();
    assert_eq!(p.devices.len(), 7);
    assert_eq!(p.devices[6].path, "/dev/fuse");
}

#[test]
fn user_namespace_needs_mappings() {
    let mut s = default_spec(false);
    s.linux.as_mut().unwrap().namespaces.push(berth_spec::Namespace {
        typ: "user".into(),
        path: None,
    });
    assert!(plan_of(&s)
        .unwrap_err()
        .to_string()
        .starts_with("linux.uidMappings:"));
    crate::defaults::make_rootless(&mut s, 1000, 1000);
    let p = plan_of(&s).unwrap();
    assert!(p.namespaces.creates(NsKind::User));
    assert!(!p.namespaces.has(NsKind::Network));
    let mut s = default_spec(false);
    s.linux.as_mut().unwrap().uid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: 1,
        size: 1,
    }];
    assert!(plan_of(&s)
        .unwrap_err()
        .to_string()
        .contains("without a user namespace"));
}

#[test]
fn sysctls_need_their_namespace() {
    let mut s = default_spec(false);
    s.linux
        .as_mut()
        .unwrap()
        .sysctl
        .insert("net.ipv4.ip_forward".into(), "1".into());
    s.linux
        .as_mut()
        .unwrap()
        .sysctl
        .insert("kernel.shmmax".into(), "1000".into());
    assert!(plan_of(&s).is_ok());
    s.linux
        .as_mut()
        .unwrap()
        .namespaces
        .retain(|n| n.typ != "network");
    assert!(plan_of(&s)
        .unwrap_err()
        .to_string()
        .starts_with("linux.sysctl.net.ipv4.ip_forward:"));
    let mut s = default_spec(false);
    s.linux
        .as_mut()
        .unwrap()
        .sysctl
        .insert("vm.swappiness".into(), "1".into());
    assert!(plan_of(&s)
        .unwrap_err()
        .to_string()
        .starts_with("linux.sysctl.vm.swappiness:"));
}

#[test]
fn hostname_needs_uts() {
    let mut s = default_spec(false);
    s.linux.as_mut().unwrap().namespaces.retain(|n| n.typ != "uts");
    assert!(plan_of(&s).unwrap_err().to_string().starts_with("hostname:"));
}

#[test]
fn version_must_be_1x() {
    let mut s = default_spec(false);
    s.oci_version = "2.0.0".into();
    assert!(plan_of(&s).unwrap_err().to_string().starts_with("ociVersion:"));
}

#[test]
fn not_json_is_a_parse_error() {
    assert!(berth_spec::from_slice(b"{ not json").is_err());
    let e =
        berth_spec::from_slice(br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":5}]}}"#).unwrap_err();
    assert!(e.to_string().contains("invalid type"), "{e}");
}

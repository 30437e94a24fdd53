//! The spec berthd composes for a container (docker's defaults and berth's default seccomp profile,
//! `crates/engine/src/containers`), run by the runtime under test: what the process sees from inside
//! is what a docker container sees (docker's capability set, a seccomp filter, no user namespaces).

use std::process::Command;

use berth_e2e::{env, Container};
use serde_json::{json, Value};

#[test]
fn a_composed_spec_runs_with_dockers_capabilities_and_seccomp() {
    let Some(env) = env() else { return };
    let compose = berth_e2e::built_in("debug", "examples/compose_spec");
    if !compose.is_file() {
        eprintln!(
            "skipped: {} not found (cargo build -p berth-engine --examples)",
            compose.display()
        );
        return;
    }
    let mut c = Container::new(&env, &[]);
    let script = "echo host=$(hostname); grep -E '^(CapBnd|Seccomp):' /proc/self/status; \
                  if unshare -U true 2>/dev/null; then echo unshare=allowed; else echo unshare=refused; fi";
    let out = Command::new(&compose)
        .args(["rootfs", "/bin/sh", "-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut spec: Value = serde_json::from_slice(&out.stdout).unwrap();
    spec["linux"]["cgroupsPath"] = c.config["linux"]["cgroupsPath"].clone();
    spec["root"]["readonly"] = json!(false);
    c.config = spec;
    c.write_config();
    std::os::unix::fs::symlink("busybox", c.bundle.join("rootfs/bin/grep")).unwrap();
    std::os::unix::fs::symlink("busybox", c.bundle.join("rootfs/bin/unshare")).unwrap();
    let o = c.run();
    let stdout = o.stdout.clone();
    assert!(stdout.contains("host=0123456789ab"), "{stdout}\n{}", o.stderr);
    // docker's default bounding set is exactly 0xa80425fb.
    assert!(stdout.contains("CapBnd:\t00000000a80425fb"), "{stdout}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(stdout.contains("unshare=refused"), "{stdout}");
}

//! cgroup limits enforced on the container: pids (a fork bomb stops at pids.max) and memory.

use berth_e2e::{env, Container};
use serde_json::json;

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["forkbomb", "200"]);
    c.config["linux"]["resources"]["pids"] = json!({"limit": 20});
    c.write_config();
    let o = c.run();
    o.ok();
    let forked: usize = o.get("forked").and_then(|v| v.parse().ok()).unwrap_or(999);
    assert!(
        forked < 20,
        "forked {forked} children under pids.max=20: {}",
        o.stdout
    );
    assert_eq!(o.get("error").as_deref(), Some("EAGAIN"), "{}", o.stdout);
}

#[test]
fn memory_limit_kills_an_allocator() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["alloc", "200"]);
    c.config["linux"]["resources"]["memory"] = json!({"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024});
    c.write_config();
    let o = c.run();
    assert_eq!(o.code, 137, "expected an OOM kill: {o:?}");
    let c = Container::new(&e, &["alloc", "8"]);
    c.run().ok();
}

#[test]
fn update_changes_the_pids_limit() {
    let Some(e) = env() else { return };
    let c = Container::new(&e, &["sleep", "60"]);
    c.rt(&["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id])
        .ok();
    c.rt(&["update", "--pids-limit", "7", &c.id]).ok();
    let o = c.rt(&["exec", &c.id, "/bin/probe", "forkbomb", "50"]);
    o.ok();
    let forked: usize = o.get("forked").and_then(|v| v.parse().ok()).unwrap_or(999);
    assert!(forked < 7, "forked {forked} under an updated pids.max of 7");
    let bad = c.rt(&["update", "--memory", "lots", &c.id]);
    assert_eq!(bad.code, 1);
}

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

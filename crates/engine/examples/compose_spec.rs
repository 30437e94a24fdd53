//! Prints the config.json berth composes for a container: `compose_spec ROOTFS [CMD...]`, with
//! docker's defaults, berth's default seccomp profile, and `HostConfig` JSON from `$HOSTCONFIG` if
//! set. A way to run what the engine would run with `berth-runtime run` by hand.

use berth_engine::containers::spec::{compose, Config, Context, HostConfig};
use berth_image::manifest::RunConfig;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(rootfs) = args.first() else {
        eprintln!("usage: compose_spec ROOTFS [CMD...]");
        return std::process::ExitCode::from(2);
    };
    let image = RunConfig {
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let cfg = Config {
        cmd: (args.len() > 1).then(|| args[1..].to_vec()),
        ..Default::default()
    };
    let host: HostConfig = match std::env::var("HOSTCONFIG") {
        Ok(j) => match serde_json::from_str(&j) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("compose_spec: HOSTCONFIG: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        Err(_) => HostConfig::default(),
    };
    let ctx = Context {
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        rootfs,
        cgroup_v2: std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        user: &|n| (n == "root").then_some((0, 0)),
        group: &|n| (n == "root").then_some(0),
        groups_of: &|_, _| Vec::new(),
        container_pid: &|_| None,
        host_device: &|_| None,
        default_seccomp: true,
    };
    match compose(&image, &cfg, &host, &ctx) {
        Ok(spec) => {
            println!("{}", serde_json::to_string_pretty(&spec).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compose_spec: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

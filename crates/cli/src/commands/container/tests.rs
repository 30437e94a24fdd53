//! `run`/`create` flags against the bodies docker 28.2.2's CLI sent for the same flags
//! (`golden/NAME.args` -> `golden/NAME.json`, captured at API 1.44 with `B=yes` in the
//! environment and /tmp/cli-docker as the working directory), and docker's errors.

use super::config::{self, Env};
use super::run::{status_code, CREATE, RUN};
use crate::args::Parsed;

const ENVF: &str = "A=1\n# c\nB\n\nC=x y\n";
const LABF: &str = "x=1\ny\n";
const PROFILE: &str =
    "{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [ {\"names\": [\"chmod\"], \"action\": \"SCMP_ACT_ERRNO\"} ]}\n";

fn lookup(k: &str) -> Option<String> {
    (k == "B").then(|| "yes".to_string())
}

fn read(p: &str) -> std::io::Result<String> {
    match p {
        "/tmp/cli-docker/envf" => Ok(ENVF.into()),
        "labf" => Ok(LABF.into()),
        "/tmp/cli-docker/prof.json" => Ok(PROFILE.into()),
        _ => Err(std::io::Error::from_raw_os_error(libc::ENOENT)),
    }
}

fn env() -> Env<'static> {
    Env {
        lookup: &lookup,
        read_file: &read,
        cwd: "/tmp/cli-docker",
    }
}

fn parsed(def: &crate::commands::Def, args: &[&str]) -> Result<Parsed, String> {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    def.spec(def.name).parse(&argv).map_err(|e| e.message)
}

fn create(args: &[&str]) -> Result<config::Create, String> {
    let p = parsed(&CREATE, args)?;
    config::parse(&p, &env(), (0, 0))
}

macro_rules! golden {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            let args = include_str!(concat!("golden/", stringify!($name), ".args"));
            let want = include_str!(concat!("golden/", stringify!($name), ".json"));
            let args: Vec<&str> = args.strip_suffix('\n').unwrap_or(args).split('\n').collect();
            let c = create(&args).unwrap();
            assert_eq!(serde_json::to_string(&c.body).unwrap(), want.trim_end());
        }
    )*};
}

golden!(
    minimal,
    none_cmd,
    interactive,
    resources,
    cgroup_rule,
    entrypoint_reset,
    two_networks,
    no_healthcheck,
    health_all,
    caps,
    seccomp_file,
    privileged,
    publish,
    network_opts,
    network_advanced,
    mounts,
    mount_default_volume
);

#[test]
fn query_of_the_create_request() {
    let c = create(&["--name", "x1", "--platform", "linux/amd64", "busybox"]).unwrap();
    assert_eq!(c.name.as_deref(), Some("x1"));
    assert_eq!(c.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(c.pull, "missing");
    let c = create(&["--pull", "never", "-q", "--cidfile", "/x", "busybox"]).unwrap();
    assert_eq!(
        (c.pull.as_str(), c.quiet, c.cidfile.as_deref()),
        ("never", true, Some("/x"))
    );
}

#[test]
fn flags_stop_at_the_image() {
    let p = parsed(&RUN, &["--rm", "busybox", "ls", "-l", "--rm"]).unwrap();
    assert_eq!(p.args, ["busybox", "ls", "-l", "--rm"]);
    // -h is the hostname for run and create, --help the help
    let p = parsed(&RUN, &["-h", "box", "busybox"]).unwrap();
    assert_eq!(p.value("hostname"), Some("box"));
    assert!(parsed(&RUN, &["--help"]).unwrap().help);
}

fn usage_error(args: &[&str]) -> String {
    parsed(&RUN, args).unwrap_err()
}

#[test]
fn typed_flags_fail_as_pflag_does() {
    assert_eq!(
        usage_error(&["--memory", "5x", "busybox"]),
        "invalid argument \"5x\" for \"-m, --memory\" flag: invalid suffix: 'x'\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information"
    );
    assert!(usage_error(&["-c", "lots", "busybox"]).starts_with(
        "invalid argument \"lots\" for \"-c, --cpu-shares\" flag: strconv.ParseInt: parsing \"lots\": invalid syntax\n"
    ));
    assert!(usage_error(&["--cpus", "x", "busybox"])
        .starts_with("invalid argument \"x\" for \"--cpus\" flag: failed to parse x as a rational number\n"));
    assert!(usage_error(&["-a", "bogus", "busybox"]).starts_with(
        "invalid argument \"bogus\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR\n"
    ));
    assert!(usage_error(&["--ulimit", "nofile=2:1", "busybox"]).starts_with(
        "invalid argument \"nofile=2:1\" for \"--ulimit\" flag: ulimit soft limit must be less than or equal to hard limit: 2 > 1\n"
    ));
    assert!(usage_error(&["--sysctl", "kernel.foo=1", "busybox"]).starts_with(
        "invalid argument \"kernel.foo=1\" for \"--sysctl\" flag: sysctl 'kernel.foo=1' is not allowed\n"
    ));
    assert!(usage_error(&["--health-interval", "5", "busybox"]).starts_with(
        "invalid argument \"5\" for \"--health-interval\" flag: time: missing unit in duration \"5\"\n"
    ));
    assert!(usage_error(&["-e", "=x", "busybox"])
        .starts_with("invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x\n"));
    assert!(usage_error(&["--add-host", "nohost", "busybox"]).starts_with(
        "invalid argument \"nohost\" for \"--add-host\" flag: bad format for add-host: \"nohost\"\n"
    ));
    assert!(usage_error(&["--blkio-weight", "70000", "busybox"]).starts_with(
        "invalid argument \"70000\" for \"--blkio-weight\" flag: strconv.ParseUint: parsing \"70000\": value out of range\n"
    ));
    assert!(usage_error(&["--mount", "type=bind", "busybox"])
        .starts_with("invalid argument \"type=bind\" for \"--mount\" flag: target is required\n"));
    assert!(usage_error(&["--network", "name=n,x=1", "busybox"])
        .starts_with("invalid argument \"name=n,x=1\" for \"--network\" flag: invalid field key x\n"));
    let e = usage_error(&[]);
    assert!(e.starts_with("berth: 'berth run' requires at least 1 argument\n"));
    assert!(e.ends_with("See 'berth run --help' for more information"));
}

#[test]
fn parse_errors_like_docker() {
    let e = |args: &[&str]| create(args).unwrap_err();
    assert_eq!(
        e(&["--env-file", "x", "busybox"]),
        "open x: no such file or directory"
    );
    assert_eq!(
        e(&["--rm", "--restart", "always", "busybox"]),
        "conflicting options: cannot specify both --restart and --rm"
    );
    assert_eq!(
        e(&["--log-driver", "none", "--log-opt", "a=b", "busybox"]),
        "invalid logging opts for driver none"
    );
    assert_eq!(
        e(&["--log-driver", "syslog", "busybox"]),
        "the \"syslog\" logging driver is not supported by berth: use json-file (the default)"
    );
    assert_eq!(e(&["--pid", "bogus", "busybox"]), "--pid: invalid PID mode");
    assert_eq!(
        e(&["--cgroupns", "x", "busybox"]),
        "--cgroupns: invalid CGROUP mode"
    );
    assert_eq!(
        e(&["--restart", ":3", "busybox"]),
        "invalid restart policy format: no policy provided before colon"
    );
    assert_eq!(
        e(&["--restart", "on-failure:x", "busybox"]),
        "invalid restart policy format: maximum retry count must be an integer"
    );
    assert_eq!(
        e(&["--memory-swappiness", "101", "busybox"]),
        "invalid value: 101. Valid memory swappiness range is 0-100"
    );
    assert_eq!(
        e(&["--security-opt", "bogus", "busybox"]),
        "Invalid --security-opt: \"bogus\""
    );
    assert_eq!(
        e(&["--device", "/dev/x:rr", "busybox"]),
        "rr is not an absolute path"
    );
    assert_eq!(
        e(&["--device", "/dev/x:/y:z", "busybox"]),
        "bad mode specified: z"
    );
    assert_eq!(
        e(&["--expose", "80:80", "busybox"]),
        "invalid port format for --expose: 80:80"
    );
    assert_eq!(
        e(&["--no-healthcheck", "--health-cmd", "x", "busybox"]),
        "--no-healthcheck conflicts with --health-* options"
    );
    assert_eq!(
        e(&["--cpu-count", "2", "busybox"]),
        "\"--cpu-count\" is only supported on a berth daemon running on windows, but the berth daemon is running on linux"
    );
    assert_eq!(e(&["-p", "80/xyz", "busybox"]), "invalid proto: xyz");
    assert_eq!(
        e(&["-p", "1.2.3.999:80:80", "busybox"]),
        "invalid IP address: 1.2.3.999"
    );
    assert_eq!(
        e(&["--mac-address", "nope", "busybox"]),
        "nope is not a valid mac address"
    );
    assert_eq!(
        e(&["--network", "bridge", "--network-alias", "a", "busybox"]),
        "network-scoped aliases are only supported for user-defined networks"
    );
    assert_eq!(
        e(&["--network", "name=n1,ip=10.0.0.2", "--ip", "10.0.0.3", "busybox"]),
        "conflicting options: cannot specify both --ip and per-network IPv4 address"
    );
    assert_eq!(
        e(&["--network", "n1", "--network", "host", "busybox"]),
        "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
    );
    assert_eq!(
        e(&["--network", "n1", "--network", "n1", "busybox"]),
        "network \"n1\" is specified multiple times"
    );
    assert_eq!(
        config::check_pull("bogus").unwrap_err(),
        "invalid pull option: 'bogus': must be one of \"always\", \"missing\" or \"never\""
    );
}

#[test]
fn start_failures_map_to_docker_exit_codes() {
    let msg = |m: &str| {
        format!("failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: {m}: unknown")
    };
    assert_eq!(
        status_code(&msg("\"nosuchcmd\": executable file not found in $PATH")),
        127
    );
    assert_eq!(status_code(&msg("\"/x\": no such file or directory")), 127);
    assert_eq!(status_code(&msg("\"/etc/passwd\": permission denied")), 126);
    assert_eq!(status_code(&msg("\"/etc\": is a directory")), 126);
    assert_eq!(
        status_code("Conflict. The container name \"/x\" is already in use"),
        125
    );
}

#[test]
fn kv_files_like_docker() {
    let l: &dyn Fn(&str) -> Option<String> = &lookup;
    assert_eq!(
        config::parse_kv_file("f", "\u{feff}A=1\n  B\nNOPE\n# x\n", Some(l)).unwrap(),
        ["A=1", "B=yes"]
    );
    assert_eq!(config::parse_kv_file("f", "A=1\nB\n", None).unwrap(), ["A=1"]);
    assert_eq!(
        config::parse_kv_file("f", "A B=1\n", None).unwrap_err(),
        "invalid env file (f): variable 'A B' contains whitespaces"
    );
    assert_eq!(
        config::parse_kv_file("f", "=1\n", None).unwrap_err(),
        "invalid env file (f): no variable name on line '=1'"
    );
}

//! berthd's settings: flags as dockerd's, and daemon.json (`--config-file`, default
//! /etc/berth/daemon.json when it exists). A setting given both ways is refused, as dockerd refuses it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
const DEFAULT_CONFIG: &str = "/etc/berth/daemon.json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix://{}", p.display()),
            Listen::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub hosts: Vec<Listen>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub insecure_registries: Vec<String>,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    pub debug: bool,
    pub group: String,
    /// `overlayfs`, `copy`, or None: the engine probes.
    pub storage_driver: Option<String>,
    pub net: NetConfig,
}

/// The network settings (dockerd's names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// `bridge`: the default bridge's interface (berth makes it).
    pub bridge: String,
    /// `bip`: the default bridge's address and prefix, `172.18.0.1/16`.
    pub bip: Option<(std::net::Ipv4Addr, u8)>,
    /// `ipv6` with `fixed-cidr-v6`: the default bridge's IPv6 subnet.
    pub ipv6: Option<berth_network::Subnet6>,
    /// `default-address-pools`: (base, size).
    pub pools: Vec<(String, u8)>,
    pub mtu: u32,
    pub icc: bool,
    pub ip_masq: bool,
    pub ip_forward: bool,
    /// `iptables`: whether berth writes firewall rules at all.
    pub iptables: bool,
    /// berth's nftables table (`inet <name>`).
    pub firewall_table: String,
}

pub enum Parsed {
    Run(Box<Config>),
    Exit(i32),
}

const USAGE: &str = "Usage:\tberthd [OPTIONS]

A self-sufficient runtime for containers: the berth daemon (Docker Engine API).

Options:
      --config-file string                    Daemon configuration file (default \"/etc/berth/daemon.json\")
      --data-root string                      Root directory of persistent berth state (default \"/var/lib/berth\")
  -D, --debug                                 Enable debug mode
      --exec-root string                      Root directory for execution state files (default \"/run/berth\")
  -G, --group string                          Group for the unix socket (default \"berth\")
  -H, --host list                             Daemon socket(s) to connect to (default unix:///run/berth/berth.sock)
      --insecure-registry list                Enable insecure registry communication
      --max-concurrent-downloads int          Set the max concurrent downloads (default 3)
      --max-concurrent-uploads int            Set the max concurrent uploads (default 5)
  -b, --bridge string                         The default bridge's interface (default \"berth0\"; made when missing)
      --bip string                            The default bridge's address and prefix (e.g. 172.18.0.1/16)
      --ipv6                                  Enable IPv6 on the default bridge (needs --fixed-cidr-v6)
      --fixed-cidr-v6 string                  The default bridge's IPv6 subnet (e.g. fd00:1::/64)
      --default-address-pool pool-options     Default address pools for node specific local networks (base=CIDR,size=N)
      --firewall-table string                 berth's nftables table (inet) (default \"berth\")
      --icc                                   Enable inter-container communication on the default bridge (default true)
      --ip-forward                            Enable IPv4 forwarding (default true)
      --ip-masq                               Enable IP masquerading on the default bridge (default true)
      --iptables                              Write berth's firewall rules (nftables) (default true)
      --mtu int                               Set the containers network MTU (default 1500)
  -s, --storage-driver string                 Storage driver: overlayfs or copy (default: overlayfs where it works)
  -p, --pidfile string                        Path to use for daemon PID file (default \"<exec-root>/berthd.pid\")
  -v, --version                               Print version information and quit
  -h, --help                                  Print usage
";

pub fn parse_host(h: &str) -> Result<Listen, String> {
    if let Some(p) = h.strip_prefix("unix://") {
        let p = if p.is_empty() { DEFAULT_SOCKET } else { p };
        if !p.starts_with('/') {
            return Err(format!("invalid host {h:?}: the socket path must be absolute"));
        }
        return Ok(Listen::Unix(PathBuf::from(p)));
    }
    if let Some(a) = h.strip_prefix("tcp://") {
        let a = a.trim_end_matches('/');
        let a = if a.starts_with(':') {
            format!("127.0.0.1{a}")
        } else {
            a.to_string()
        };
        return a
            .parse::<SocketAddr>()
            .map(Listen::Tcp)
            .map_err(|_| format!("invalid host {h:?}: expected tcp://IP:PORT"));
    }
    if h.starts_with('/') {
        return Ok(Listen::Unix(PathBuf::from(h)));
    }
    Err(format!(
        "invalid host {h:?}: expected unix:///path or tcp://IP:PORT"
    ))
}

/// Flags as given: name -> values.
type Flags = BTreeMap<&'static str, Vec<String>>;

fn canonical(name: &str) -> Option<(&'static str, bool)> {
    // (canonical name, takes a value)
    Some(match name {
        "-H" | "--host" => ("hosts", true),
        "--data-root" => ("data-root", true),
        "--exec-root" => ("exec-root", true),
        "-p" | "--pidfile" => ("pidfile", true),
        "--config-file" => ("config-file", true),
        "--insecure-registry" => ("insecure-registries", true),
        "--max-concurrent-downloads" => ("max-concurrent-downloads", true),
        "--max-concurrent-uploads" => ("max-concurrent-uploads", true),
        "-G" | "--group" => ("group", true),
        "-s" | "--storage-driver" => ("storage-driver", true),
        "-b" | "--bridge" => ("bridge", true),
        "--bip" => ("bip", true),
        "--ipv6" => ("ipv6", false),
        "--fixed-cidr-v6" => ("fixed-cidr-v6", true),
        "--default-address-pool" => ("default-address-pools", true),
        "--firewall-table" => ("firewall-table", true),
        "--mtu" => ("mtu", true),
        "--icc" => ("icc", false),
        "--ip-forward" => ("ip-forward", false),
        "--ip-masq" => ("ip-masq", false),
        "--iptables" => ("iptables", false),
        "-D" | "--debug" => ("debug", false),
        "-h" | "--help" => ("help", false),
        "-v" | "--version" => ("version", false),
        _ => return None,
    })
}

pub fn from_args(args: Vec<String>) -> Result<Parsed, String> {
    let mut flags: Flags = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let Some((key, takes)) = canonical(&name) else {
            if a.starts_with('-') {
                return Err(format!("unknown flag: {name}\nSee 'berthd --help'."));
            }
            return Err(format!(
                "berthd takes no arguments, got {a:?}\nSee 'berthd --help'."
            ));
        };
        let value = if takes {
            match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("flag needs an argument: {name}"))?
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") | Some("1") => "true".into(),
                Some("false") | Some("0") => "false".into(),
                Some(v) => return Err(format!("invalid argument {v:?} for {name}")),
            }
        };
        flags.entry(key).or_default().push(value);
        i += 1;
    }
    if flags.contains_key("help") {
        print!("{USAGE}");
        return Ok(Parsed::Exit(0));
    }
    if flags.contains_key("version") {
        println!("berthd version {}", env!("CARGO_PKG_VERSION"));
        return Ok(Parsed::Exit(0));
    }
    let file_path = flags.get("config-file").and_then(|v| v.last().cloned());
    let file = match &file_path {
        Some(p) => Some(read_file(p)?),
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => Some(read_file(DEFAULT_CONFIG)?),
        None => None,
    };
    build(&flags, file.as_ref())
}

fn read_file(p: &str) -> Result<BTreeMap<String, Value>, String> {
    let data = std::fs::read(p).map_err(|e| format!("unable to configure the daemon with file {p}: {e}"))?;
    serde_json::from_slice(&data).map_err(|e| format!("unable to configure the daemon with file {p}: {e}"))
}

const FILE_KEYS: &[&str] = &[
    "hosts",
    "data-root",
    "exec-root",
    "pidfile",
    "insecure-registries",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "debug",
    "group",
    "storage-driver",
    "bridge",
    "bip",
    "ipv6",
    "fixed-cidr-v6",
    "default-address-pools",
    "firewall-table",
    "mtu",
    "icc",
    "ip-forward",
    "ip-masq",
    "iptables",
];

fn build(flags: &Flags, file: Option<&BTreeMap<String, Value>>) -> Result<Parsed, String> {
    let empty = BTreeMap::new();
    let file = file.unwrap_or(&empty);
    let unknown: Vec<&String> = file.keys().filter(|k| !FILE_KEYS.contains(&k.as_str())).collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the following directives don't match any configuration option: {}",
            unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    let both: Vec<String> = file
        .keys()
        .filter(|k| flags.contains_key(k.as_str()))
        .map(|k| {
            format!(
                "{k}: (from flag: {}, from file: {})",
                flags[k.as_str()].join(","),
                file[k]
            )
        })
        .collect();
    if !both.is_empty() {
        return Err(format!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            both.join(", ")
        ));
    }
    let list = |k: &'static str| -> Result<Vec<String>, String> {
        if let Some(v) = flags.get(k) {
            return Ok(v.clone());
        }
        match file.get(k) {
            None => Ok(vec![]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .ok_or_else(|| format!("{k} in the configuration file must be a list of strings"))
                })
                .collect(),
            Some(_) => Err(format!("{k} in the configuration file must be a list of strings")),
        }
    };
    let one = |k: &'static str| -> Result<Option<String>, String> {
        if let Some(v) = flags.get(k) {
            return Ok(v.last().cloned());
        }
        match file.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(format!("{k} in the configuration file has the wrong type")),
        }
    };
    let num = |k: &'static str, default: usize| -> Result<usize, String> {
        match one(k)? {
            None => Ok(default),
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("invalid {k} {s:?}: expected a positive number")),
            },
        }
    };
    let mut hosts = Vec::new();
    for h in list("hosts")? {
        hosts.push(parse_host(&h)?);
    }
    if hosts.is_empty() {
        hosts.push(Listen::Unix(PathBuf::from(DEFAULT_SOCKET)));
    }
    let abs = |k: &str, p: String| -> Result<PathBuf, String> {
        if p.starts_with('/') {
            Ok(PathBuf::from(p))
        } else {
            Err(format!("{k} must be an absolute path, got {p:?}"))
        }
    };
    let data_root = abs(
        "data-root",
        one("data-root")?.unwrap_or_else(|| "/var/lib/berth".into()),
    )?;
    let exec_root = abs(
        "exec-root",
        one("exec-root")?.unwrap_or_else(|| "/run/berth".into()),
    )?;
    let pidfile = match one("pidfile")? {
        Some(p) => abs("pidfile", p)?,
        None => exec_root.join("berthd.pid"),
    };
    let mut insecure = Vec::new();
    for r in list("insecure-registries")? {
        let r = r
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        if r.is_empty() || r.contains('/') && !r.contains(':') && !r.contains('.') {
            return Err(format!("invalid insecure registry {r:?}"));
        }
        insecure.push(r);
    }
    let debug = matches!(one("debug")?.as_deref(), Some("true"));
    let flag = |k: &'static str| -> Result<bool, String> {
        match one(k)?.as_deref() {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(format!("invalid {k} {v:?}: expected true or false")),
        }
    };
    let bip = match one("bip")? {
        None => None,
        Some(b) => {
            let bad =
                || format!("invalid bip {b:?}: expected an IPv4 address with a prefix, e.g. 172.18.0.1/16");
            let (a, p) = b.split_once('/').ok_or_else(bad)?;
            let a: std::net::Ipv4Addr = a.parse().map_err(|_| bad())?;
            let p: u8 = p.parse().ok().filter(|p| (1..=30).contains(p)).ok_or_else(bad)?;
            Some((a, p))
        }
    };
    // dockerd's `ipv6` (default false) with the subnet of `fixed-cidr-v6`.
    let ipv6 = match (one("ipv6")?.as_deref(), one("fixed-cidr-v6")?) {
        (None | Some("false"), _) => None,
        (Some("true"), Some(c)) => Some(c.parse::<berth_network::Subnet6>().map_err(|_| {
            format!("invalid fixed-cidr-v6 {c:?}: expected an IPv6 subnet, e.g. fd00:1::/64")
        })?),
        (Some("true"), None) => {
            return Err(
                "ipv6 needs fixed-cidr-v6: berth has no default IPv6 subnet for the default bridge".into(),
            )
        }
        (Some(v), _) => return Err(format!("invalid ipv6 {v:?}: expected true or false")),
    };
    let mut pools = Vec::new();
    let pool_texts: Vec<String> = match (
        flags.get("default-address-pools"),
        file.get("default-address-pools"),
    ) {
        (Some(v), _) => v.clone(),
        (None, Some(Value::Array(a))) => a
            .iter()
            .map(|p| {
                let base = p.get("base").and_then(Value::as_str);
                let size = p.get("size").and_then(Value::as_u64);
                match (base, size) {
                    (Some(b), Some(s)) => Ok(format!("base={b},size={s}")),
                    _ => Err("default-address-pools entries need a base and a size".to_string()),
                }
            })
            .collect::<Result<_, _>>()?,
        (None, Some(_)) => return Err("default-address-pools must be a list of {\"base\", \"size\"}".into()),
        (None, None) => Vec::new(),
    };
    for t in pool_texts {
        let mut base = None;
        let mut size = None;
        for kv in t.split(',') {
            match kv.split_once('=') {
                Some(("base", b)) => base = Some(b.to_string()),
                Some(("size", n)) => size = n.parse::<u8>().ok().filter(|n| *n <= 32),
                _ => {
                    return Err(format!(
                        "invalid default address pool {t:?}: expected base=CIDR,size=N"
                    ))
                }
            }
        }
        match (base, size) {
            (Some(b), Some(n)) => pools.push((b, n)),
            _ => {
                return Err(format!(
                    "invalid default address pool {t:?}: expected base=CIDR,size=N"
                ))
            }
        }
    }
    let mtu = match one("mtu")? {
        None => 1500,
        Some(m) => m
            .parse::<u32>()
            .ok()
            .filter(|m| (68..=65535).contains(m))
            .ok_or_else(|| format!("invalid mtu {m:?}: must be between 68 and 65535"))?,
    };
    let bridge = one("bridge")?.unwrap_or_else(|| "berth0".into());
    if bridge.is_empty() || bridge.len() > 15 || bridge.contains('/') {
        return Err(format!("invalid bridge name {bridge:?}"));
    }
    let net = NetConfig {
        bridge,
        bip,
        ipv6,
        pools,
        mtu,
        icc: flag("icc")?,
        ip_masq: flag("ip-masq")?,
        ip_forward: flag("ip-forward")?,
        iptables: flag("iptables")?,
        firewall_table: one("firewall-table")?.unwrap_or_else(|| "berth".into()),
    };
    Ok(Parsed::Run(Box::new(Config {
        hosts,
        data_root,
        exec_root,
        pidfile,
        insecure_registries: insecure,
        max_concurrent_downloads: num("max-concurrent-downloads", 3)?,
        max_concurrent_uploads: num("max-concurrent-uploads", 5)?,
        debug,
        group: one("group")?.unwrap_or_else(|| "berth".into()),
        storage_driver: one("storage-driver")?,
        net,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], file: Option<&str>) -> Result<Config, String> {
        let mut flags: Flags = BTreeMap::new();
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        // Reuse the real parser for the flags, then build with the given file.
        let mut i = 0;
        while i < argv.len() {
            let (n, inline) = match argv[i].split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (argv[i].clone(), None),
            };
            let (k, takes) = canonical(&n).ok_or_else(|| format!("unknown flag: {n}"))?;
            let v = if takes {
                inline.unwrap_or_else(|| {
                    i += 1;
                    argv[i].clone()
                })
            } else {
                inline.unwrap_or_else(|| "true".into())
            };
            flags.entry(k).or_default().push(v);
            i += 1;
        }
        let file: Option<BTreeMap<String, Value>> = file.map(|f| serde_json::from_str(f).unwrap());
        match build(&flags, file.as_ref())? {
            Parsed::Run(c) => Ok(*c),
            Parsed::Exit(_) => Err("exit".into()),
        }
    }

    #[test]
    fn defaults_and_flags() {
        let c = run(&[], None).unwrap();
        assert_eq!(c.hosts, vec![Listen::Unix(DEFAULT_SOCKET.into())]);
        assert_eq!(c.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(c.pidfile, PathBuf::from("/run/berth/berthd.pid"));
        let c = run(
            &[
                "-H",
                "unix:///tmp/b.sock",
                "--host=tcp://127.0.0.1:2375",
                "--data-root",
                "/tmp/d",
                "--exec-root=/tmp/e",
                "-D",
                "--insecure-registry",
                "reg.lan:5000",
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            c.hosts,
            vec![
                Listen::Unix("/tmp/b.sock".into()),
                Listen::Tcp("127.0.0.1:2375".parse().unwrap())
            ]
        );
        assert_eq!(c.pidfile, PathBuf::from("/tmp/e/berthd.pid"));
        assert!(c.debug);
        assert_eq!(c.insecure_registries, vec!["reg.lan:5000".to_string()]);
    }

    #[test]
    fn daemon_json_and_conflicts() {
        let c = run(
            &[],
            Some(
                r#"{"data-root":"/srv/berth","insecure-registries":["r:5000"],"max-concurrent-downloads":6}"#,
            ),
        )
        .unwrap();
        assert_eq!(c.data_root, PathBuf::from("/srv/berth"));
        assert_eq!(c.max_concurrent_downloads, 6);
        let e = run(&["--data-root", "/a"], Some(r#"{"data-root":"/b"}"#)).unwrap_err();
        assert!(
            e.contains("specified both as a flag and in the configuration file"),
            "{e}"
        );
        let e = run(&[], Some(r#"{"dataroot":"/b"}"#)).unwrap_err();
        assert!(
            e.contains("don't match any configuration option: dataroot"),
            "{e}"
        );
        assert!(run(&["--data-root", "relative"], None).is_err());
        assert!(parse_host("tcp://nonsense").is_err());
        assert!(run(&["--max-concurrent-downloads", "0"], None).is_err());
    }

    #[test]
    fn network_settings() {
        let c = run(&[], None).unwrap();
        assert_eq!(c.net.bridge, "berth0");
        assert!(c.net.icc && c.net.iptables && c.net.ip_forward);
        let c = run(
            &[
                "--bip",
                "10.99.0.1/24",
                "--icc=false",
                "--bridge",
                "bt1",
                "--firewall-table",
                "bt1",
            ],
            Some(r#"{"default-address-pools":[{"base":"10.100.0.0/16","size":24}],"mtu":1400}"#),
        )
        .unwrap();
        assert_eq!(c.net.bip, Some(("10.99.0.1".parse().unwrap(), 24)));
        assert!(!c.net.icc);
        assert_eq!(c.net.pools, vec![("10.100.0.0/16".to_string(), 24)]);
        assert_eq!(
            (c.net.mtu, c.net.bridge.as_str(), c.net.firewall_table.as_str()),
            (1400, "bt1", "bt1")
        );
        assert!(run(&["--bip", "10.0.0.1"], None).is_err());
        assert!(run(&["--default-address-pool", "base=10.0.0.0/8"], None).is_err());
        assert!(run(&["--mtu", "10"], None).is_err());
        // IPv6 on the default bridge: off unless asked, and then with a subnet.
        assert_eq!(run(&[], None).unwrap().net.ipv6, None);
        let c = run(&[], Some(r#"{"ipv6":true,"fixed-cidr-v6":"fd00:7::/64"}"#)).unwrap();
        assert_eq!(c.net.ipv6, Some("fd00:7::/64".parse().unwrap()));
        let c = run(&["--ipv6=false", "--fixed-cidr-v6", "fd00:7::/64"], None).unwrap();
        assert_eq!(c.net.ipv6, None);
        assert!(run(&["--ipv6"], None).unwrap_err().contains("fixed-cidr-v6"));
        assert!(run(&["--ipv6", "--fixed-cidr-v6", "10.0.0.0/8"], None).is_err());
    }
}

//! The firewall as data: goldens of whole documents (regenerate with `BERTH_UPDATE_GOLDEN=1 cargo
//! test -p berth-network firewall` and review the diff), the order properties the forward chain
//! relies on, `check`, and `apply` against fake nft programs. Applying the goldens to a real
//! kernel (in throw-away network namespaces) is `tests/firewall_netns.rs`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

fn net(bridge: &str, subnet: &str) -> NetRules {
    NetRules {
        bridge: bridge.into(),
        subnet: subnet.parse().unwrap(),
        subnet6: None,
        internal: false,
        masquerade: true,
        icc: true,
    }
}

fn port(proto: Proto, host: Option<&str>, hport: u16, cip: &str, cport: u16) -> PortRule {
    PortRule {
        proto,
        host_ip: host.map(|h| h.parse().unwrap()),
        host_port: hport,
        container_ip: cip.parse().unwrap(),
        container_port: cport,
        bridge: "berth0".into(),
    }
}

fn with(networks: Vec<NetRules>, ports: Vec<PortRule>, guard: bool) -> Firewall {
    Firewall {
        networks,
        ports,
        forward_guard: guard,
        forward_guard6: guard,
        ..Firewall::new("berth")
    }
}

/// The golden cases: name -> firewall.
fn cases() -> Vec<(&'static str, Firewall)> {
    let internal = NetRules {
        internal: true,
        icc: true,
        ..net("br-0123456789ab", "172.18.0.0/16")
    };
    let quiet = NetRules {
        masquerade: false,
        icc: false,
        ..net("br-quiet", "10.10.0.0/24")
    };
    let ports = vec![
        port(Proto::Tcp, None, 8080, "172.17.0.2", 80),
        port(Proto::Udp, None, 5353, "172.17.0.2", 53),
        port(Proto::Tcp, Some("127.0.0.1"), 8443, "172.17.0.3", 443),
        port(Proto::Udp, Some("0.0.0.0"), 6000, "172.17.0.3", 6000),
        port(Proto::Sctp, Some("192.0.2.10"), 3868, "172.17.0.4", 3868),
    ];
    let v6 = NetRules {
        subnet6: Some("fd00:b::/64".parse().unwrap()),
        ..net("br-v6", "172.19.0.0/16")
    };
    let v6_ports = vec![
        PortRule {
            bridge: "br-v6".into(),
            ..port(Proto::Tcp, None, 8080, "172.19.0.2", 80)
        },
        PortRule {
            bridge: "br-v6".into(),
            ..port(Proto::Tcp, None, 8080, "fd00:b::2", 80)
        },
        PortRule {
            bridge: "br-v6".into(),
            ..port(Proto::Udp, Some("2001:db8::1"), 53, "fd00:b::2", 53)
        },
    ];
    vec![
        ("empty", Firewall::new("berth")),
        (
            "default_bridge",
            with(vec![net("berth0", "172.17.0.0/16")], vec![], true),
        ),
        (
            "two_networks",
            with(
                vec![net("berth0", "172.17.0.0/16"), internal, quiet],
                vec![],
                true,
            ),
        ),
        ("ports", with(vec![net("berth0", "172.17.0.0/16")], ports, false)),
        ("ipv6", with(vec![v6], v6_ports, true)),
    ]
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/firewall")
}

#[test]
fn documents_match_goldens() {
    let update = std::env::var("BERTH_UPDATE_GOLDEN").as_deref() == Ok("1");
    for (name, fw) in cases() {
        fw.check().unwrap();
        let path = golden_dir().join(format!("{name}.json"));
        let got = serde_json::to_string_pretty(&fw.document()).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing: BERTH_UPDATE_GOLDEN=1", path.display()));
        assert!(
            got == want,
            "{name} differs from {} (BERTH_UPDATE_GOLDEN=1 to accept, then review)",
            path.display()
        );
    }
}

#[test]
fn teardown_golden() {
    let got = serde_json::to_string_pretty(&Firewall::teardown("berth")).unwrap() + "\n";
    let path = golden_dir().join("teardown.json");
    if std::env::var("BERTH_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    assert_eq!(got, std::fs::read_to_string(&path).unwrap());
}

#[test]
fn dns_redirect_golden() {
    let doc = DnsRedirect {
        udp_port: 40001,
        tcp_port: 40002,
    }
    .document();
    let got = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let path = golden_dir().join("dns_redirect.json");
    if std::env::var("BERTH_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, &got).unwrap();
    }
    assert_eq!(got, std::fs::read_to_string(&path).unwrap());
}

fn objects(doc: &Value) -> &Vec<Value> {
    doc["nftables"].as_array().unwrap()
}

/// (chain, comment) of every rule, in order.
fn rules(doc: &Value) -> Vec<(String, String)> {
    objects(doc)
        .iter()
        .filter_map(|o| o["add"].get("rule"))
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("chain"), s("comment"))
        })
        .collect()
}

fn position(rules: &[(String, String)], comment: &str) -> usize {
    rules
        .iter()
        .position(|(_, c)| c == comment)
        .unwrap_or_else(|| panic!("no rule {comment:?} in {rules:?}"))
}

#[test]
fn a_document_recreates_only_its_own_table() {
    let fw = with(vec![net("berth0", "172.17.0.0/16")], vec![], true);
    let doc = Firewall {
        table: "berth-test".into(),
        ..fw
    }
    .document();
    let objs = objects(&doc);
    let table = serde_json::json!({"table": {"family": "inet", "name": "berth-test"}});
    for (o, cmd) in objs[..3].iter().zip(["add", "delete", "add"]) {
        assert_eq!(o.as_object().unwrap().len(), 1, "{o}");
        assert_eq!(o[cmd], table, "{o}");
    }
    for o in &objs[3..] {
        let (cmd, obj) = o.as_object().unwrap().iter().next().unwrap();
        assert_eq!(cmd, "add", "{o}");
        let (_, inner) = obj.as_object().unwrap().iter().next().unwrap();
        assert_eq!(inner["family"], "inet", "{o}");
        assert_eq!(inner["table"], "berth-test", "{o}");
    }
    let chains: Vec<&str> = objs
        .iter()
        .filter_map(|o| o["add"].get("chain"))
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(chains, CHAINS);
}

#[test]
fn forward_isolates_networks_and_guards_last() {
    let fw = with(
        vec![net("br-a", "10.1.0.0/24"), net("br-b", "10.2.0.0/24")],
        vec![],
        true,
    );
    let r = rules(&fw.document());
    // Published ports and replies into b are accepted before anything else into b is dropped,
    // and that drop comes before a's "out" accept: a -> b is refused (isolation).
    assert!(position(&r, "br-b: replies") < position(&r, "br-b: nothing else in"));
    assert!(position(&r, "br-b: published ports") < position(&r, "br-b: nothing else in"));
    assert!(position(&r, "br-b: icc") < position(&r, "br-b: nothing else in"));
    assert!(position(&r, "br-b: nothing else in") < position(&r, "br-a: out"));
    let last = r.iter().rposition(|(c, _)| c == "forward").unwrap();
    assert_eq!(r[last].1, "forward guard: only berth's bridges");
}

#[test]
fn internal_networks_get_no_nat_and_no_way_out() {
    let fw = with(
        vec![NetRules {
            internal: true,
            ..net("br-int", "10.3.0.0/24")
        }],
        vec![],
        false,
    );
    let r = rules(&fw.document());
    assert!(!r.iter().any(|(c, _)| c == "postrouting"), "{r:?}");
    let fwd: Vec<&str> = r
        .iter()
        .filter(|(c, _)| c == "forward")
        .map(|(_, m)| m.as_str())
        .collect();
    assert_eq!(
        fwd,
        [
            "br-int: icc",
            "br-int: internal, nothing out",
            "br-int: internal, nothing in"
        ]
    );
}

#[test]
fn no_masquerade_keeps_loopback_and_hairpin() {
    let fw = with(
        vec![NetRules {
            masquerade: false,
            ..net("br-x", "10.4.0.0/24")
        }],
        vec![],
        false,
    );
    let post: Vec<String> = rules(&fw.document())
        .into_iter()
        .filter(|(c, _)| c == "postrouting")
        .map(|(_, m)| m)
        .collect();
    assert_eq!(
        post,
        [
            "br-x: loopback to published ports",
            "br-x: hairpin to published ports"
        ]
    );
}

#[test]
fn guard_without_networks_drops_every_forwarded_packet() {
    let doc = with(vec![], vec![], true).document();
    let rule = objects(&doc)
        .iter()
        .filter_map(|o| o["add"].get("rule"))
        .find(|r| r["chain"] == "forward")
        .unwrap();
    assert_eq!(rule["expr"], serde_json::json!([{"drop": null}]));
}

#[test]
fn a_guard_of_one_family_matches_only_that_family() {
    let guard = |v4: bool, v6: bool| {
        let fw = Firewall {
            forward_guard: v4,
            forward_guard6: v6,
            ..with(vec![net("berth0", "172.17.0.0/16")], vec![], false)
        };
        let doc = fw.document();
        objects(&doc)
            .iter()
            .filter_map(|o| o["add"].get("rule"))
            .find(|r| r["comment"] == "forward guard: only berth's bridges")
            .map(|r| r["expr"].clone())
    };
    assert_eq!(guard(false, false), None);
    let family = |e: &Value| e[0]["match"]["right"].clone();
    assert_eq!(family(&guard(true, false).unwrap()), "ipv4");
    assert_eq!(family(&guard(false, true).unwrap()), "ipv6");
    let both = guard(true, true).unwrap();
    assert_eq!(both.as_array().unwrap().len(), 3, "no family match: {both}");
}

#[test]
fn host_addresses_select_the_family() {
    let dnat = |p: PortRule| {
        let fw = with(vec![], vec![p], false);
        let doc = fw.document();
        let rule = objects(&doc)
            .iter()
            .filter_map(|o| o["add"].get("rule"))
            .find(|r| r["chain"] == PORTS_CHAIN)
            .unwrap()
            .clone();
        rule["expr"].clone()
    };
    let any6 = dnat(port(Proto::Tcp, Some("::"), 80, "fd00::2", 8080));
    assert_eq!(
        any6,
        serde_json::json!([
            {"match": {"left": {"meta": {"key": "nfproto"}}, "right": "ipv6", "op": "=="}},
            {"match": {"left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80, "op": "=="}},
            {"dnat": {"addr": "fd00::2", "family": "ip6", "port": 8080}}
        ])
    );
    let one = dnat(port(Proto::Udp, Some("10.0.0.1"), 53, "172.17.0.2", 5353));
    assert_eq!(
        one[0],
        serde_json::json!({"match": {"left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.0.0.1", "op": "=="}})
    );
}

#[test]
fn check_refuses_what_nft_would() {
    let ok = with(vec![net("berth0", "172.17.0.0/16")], vec![], false);
    assert!(ok.check().is_ok());
    let bad_table = Firewall {
        table: "no spaces".into(),
        ..ok.clone()
    };
    assert_eq!(
        bad_table.check().unwrap_err().to_string(),
        "invalid nftables table name \"no spaces\""
    );
    let long = with(vec![net("br-0123456789abc", "10.0.0.0/24")], vec![], false);
    assert_eq!(
        long.check().unwrap_err().to_string(),
        "invalid interface name \"br-0123456789abc\""
    );
    let mixed = with(
        vec![],
        vec![port(Proto::Tcp, Some("127.0.0.1"), 80, "fd00::2", 80)],
        false,
    );
    assert_eq!(
        mixed.check().unwrap_err().to_string(),
        "published port 80/tcp: host address 127.0.0.1 and container address fd00::2 are of different families"
    );
    let same = with(
        vec![],
        vec![port(Proto::Tcp, Some("::1"), 1, "fd00::2", 2)],
        false,
    );
    assert!(same.check().is_ok());
}

#[test]
fn proto_names() {
    for p in [Proto::Tcp, Proto::Udp, Proto::Sctp] {
        assert_eq!(p.as_str().parse::<Proto>(), Ok(p));
    }
    assert_eq!("icmp".parse::<Proto>(), Err("icmp".to_string()));
}

/// A fake `nft` (a shell script) in a temp dir; exec retried on ETXTBSY, which a test thread
/// forking elsewhere while the script was still open for writing can cause.
fn fake_nft(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("nft");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn apply_retrying(nft: &Path, doc: &Value) -> Result<(), FirewallError> {
    for _ in 0..50 {
        match apply(nft, doc) {
            Err(FirewallError::Spawn { source, .. }) if source.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other,
        }
    }
    apply(nft, doc)
}

#[test]
fn apply_feeds_the_document_to_nft_json_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got");
    let nft = fake_nft(
        dir.path(),
        &format!("echo \"$@\" > {0}.args; cat > {0}", out.display()),
    );
    let doc = with(vec![net("berth0", "172.17.0.0/16")], vec![], true).document();
    apply_retrying(&nft, &doc).unwrap();
    let got: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(got, doc);
    let args = std::fs::read_to_string(dir.path().join("got.args")).unwrap();
    assert_eq!(args.trim(), "-j -f /proc/self/fd/0");
}

#[test]
fn apply_names_nfts_complaint() {
    let dir = tempfile::tempdir().unwrap();
    let nft = fake_nft(
        dir.path(),
        "cat >/dev/null; echo 'Error: Could not process rule: No such file or directory' >&2; exit 1",
    );
    let err = apply_retrying(&nft, &Firewall::teardown("berth")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{} -j -f /proc/self/fd/0: exit status: 1: ",
            nft.display()
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with("Error: Could not process rule: No such file or directory"),
        "{msg}"
    );
}

#[test]
fn apply_without_nft_says_so() {
    let missing = Path::new("/nonexistent/nft");
    let err = apply(missing, &Firewall::teardown("berth")).unwrap_err();
    assert!(matches!(err, FirewallError::Spawn { .. }), "{err:?}");
    assert!(err.to_string().starts_with("run /nonexistent/nft: "), "{err}");
    assert!(!available(missing));
}

use std::sync::Arc;

use serde_json::json;

use super::dataplane::Recording;
use super::*;

fn service(dir: &Path) -> (Arc<NetworkService>, Arc<Recording>) {
    let dp = Arc::new(Recording::default());
    let mut s = Settings::new(&dir.join("data"), &dir.join("run"));
    s.bip = Some((Ipv4Addr::new(10, 200, 0, 1), 24));
    let svc = NetworkService::open(s, dp.clone(), Arc::new(Events::new())).unwrap();
    (svc, dp)
}

fn create(svc: &NetworkService, body: Value) -> Result<String, Error> {
    svc.create(serde_json::from_value(body).unwrap())
}

#[test]
fn predefined_networks_and_the_default_bridge() {
    let d = tempfile::tempdir().unwrap();
    let (svc, dp) = service(d.path());
    let calls = dp.take();
    assert!(
        calls.contains(&"bridge_up berth0 10.200.0.1/24 mtu 1500".to_string()),
        "{calls:?}"
    );
    let all = svc.list(&BTreeMap::new(), &|_| false).unwrap();
    let mut names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["bridge", "host", "none"]);
    let b = svc.inspect("bridge").unwrap();
    assert_eq!(
        b["IPAM"]["Config"],
        json!([{"Subnet": "10.200.0.0/24", "Gateway": "10.200.0.1"}])
    );
    assert_eq!(b["Options"]["com.docker.network.bridge.name"], "berth0");
    assert_eq!(
        svc.remove("bridge").unwrap_err().to_string(),
        "bridge is a pre-defined network and cannot be removed"
    );
    // Reopened: the same IDs.
    let id = b["Id"].as_str().unwrap().to_string();
    drop(svc);
    let (svc, _) = service(d.path());
    assert_eq!(svc.inspect("bridge").unwrap()["Id"], id.as_str());
    assert_eq!(svc.inspect(&id[..6]).unwrap()["Name"], "bridge");
}

#[test]
fn user_networks_create_check_and_remove() {
    let d = tempfile::tempdir().unwrap();
    let (svc, dp) = service(d.path());
    dp.take();
    let id = create(&svc, json!({"Name": "front", "IPAM": {"Config": [{"Subnet": "10.7.0.0/16", "IPRange": "10.7.1.0/24", "Gateway": "10.7.0.254"}]}, "Labels": {"a": "b"}})).unwrap();
    let n = svc.inspect("front").unwrap();
    assert_eq!(n["Id"], id.as_str());
    assert_eq!(
        n["IPAM"]["Config"],
        json!([{"Subnet": "10.7.0.0/16", "IPRange": "10.7.1.0/24", "Gateway": "10.7.0.254"}])
    );
    let calls = dp.take();
    assert_eq!(
        calls[0],
        format!("bridge_up br-{} 10.7.0.254/16 mtu 1500", &id[..12])
    );
    assert!(calls[1].starts_with("firewall berth nets 2"), "{calls:?}");
    let e = create(&svc, json!({"Name": "front"})).unwrap_err();
    assert_eq!(
        (e.status(), e.to_string()),
        (409, "network with name front already exists".into())
    );
    let e = create(
        &svc,
        json!({"Name": "other", "IPAM": {"Config": [{"Subnet": "10.7.3.0/24"}]}}),
    )
    .unwrap_err();
    assert_eq!(e.status(), 403);
    assert_eq!(
        e.to_string(),
        "invalid pool request: Pool overlaps with other one on this address space"
    );
    assert!(dp.take().is_empty(), "nothing made for a refused network");
    let e = create(&svc, json!({"Name": "x", "Driver": "overlay"})).unwrap_err();
    assert_eq!(e.status(), 404);
    // An automatic subnet avoids the others.
    create(&svc, json!({"Name": "auto"})).unwrap();
    let a = svc.inspect("auto").unwrap();
    assert!(a["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .starts_with("172."));
    let f: BTreeMap<String, Vec<String>> = [("label".to_string(), vec!["a=b".to_string()])].into();
    assert_eq!(svc.list(&f, &|_| false).unwrap().as_array().unwrap().len(), 1);
    let f: BTreeMap<String, Vec<String>> = [("type".to_string(), vec!["custom".to_string()])].into();
    assert_eq!(svc.list(&f, &|_| false).unwrap().as_array().unwrap().len(), 2);
    assert_eq!(
        svc.prune(&BTreeMap::new(), &|n| n == "auto").unwrap(),
        vec!["front".to_string()]
    );
    svc.remove("auto").unwrap();
    assert!(dp.take().iter().any(|c| c.starts_with("bridge_down br-")));
    assert_eq!(svc.get("auto").unwrap_err().status(), 404);
}

#[test]
fn containers_get_addresses_ports_and_give_them_back() {
    let d = tempfile::tempdir().unwrap();
    let (svc, dp) = service(d.path());
    create(
        &svc,
        json!({"Name": "app", "IPAM": {"Config": [{"Subnet": "10.9.0.0/24"}]}}),
    )
    .unwrap();
    // dockerd's checks at create.
    let e = svc
        .plan_container("bridge", Some(&json!({"bridge": {"Aliases": ["x"]}})), None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "network-scoped alias is supported only for containers in user defined networks"
    );
    let e = svc
        .plan_container(
            "bridge",
            Some(&json!({"bridge": {"IPAMConfig": {"IPv4Address": "10.200.0.9"}}})),
            None,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "user specified IP address is supported on user defined networks only"
    );
    assert_eq!(svc.plan_container("nope", None, None).unwrap_err().status(), 404);
    let (mode, eps) = svc.plan_container("default", None, None).unwrap();
    assert_eq!(mode, "bridge");
    assert_eq!(eps.keys().collect::<Vec<_>>(), ["bridge"]);
    let (mode, eps) = svc
        .plan_container(
            "app",
            Some(&json!({"app": {"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.9.0.50"}}})),
            None,
        )
        .unwrap();
    assert_eq!(mode, "app");
    assert_eq!(eps["app"].ipv4, Some(Ipv4Addr::new(10, 9, 0, 50)));

    let id = "a".repeat(64);
    dp.take();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bindings = json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]});
    let got = svc
        .attach(&Attach {
            id: &id,
            name: "web1",
            primary: "app",
            networks: &eps,
            port_bindings: &bindings,
            exposed: vec![],
            publish_all: false,
        })
        .unwrap();
    assert!(got.embedded_dns);
    assert_eq!(got.networks["app"].ip, Some(Ipv4Addr::new(10, 9, 0, 50)));
    assert_eq!(got.networks["app"].mac_address, "02:42:0a:09:00:32");
    assert_eq!(got.ports[0].host_port, port);
    let calls: Vec<String> = dp
        .take()
        .into_iter()
        .skip_while(|c| c.starts_with("sandbox_remove"))
        .collect();
    assert!(calls[0].starts_with("sandbox_create"), "{calls:?}");
    assert!(
        calls[1].starts_with("plug eth0 veth") && calls[1].contains("10.9.0.50/24 gw Some(10.9.0.1) on br-"),
        "{calls:?}"
    );
    assert!(
        calls[2].contains(&format!("127.0.0.1:{port}->10.9.0.50:80/tcp")),
        "{calls:?}"
    );
    // The DNS view: names and aliases on the network, the short ID too.
    assert_eq!(
        svc.resolve_name(&id, "WEB."),
        Some(vec!["10.9.0.50".parse().unwrap()])
    );
    assert_eq!(
        svc.resolve_name(&id, "web1.app"),
        Some(vec!["10.9.0.50".parse().unwrap()])
    );
    assert_eq!(
        svc.resolve_name(&id, &id[..12]),
        Some(vec!["10.9.0.50".parse().unwrap()])
    );
    assert_eq!(svc.resolve_name(&id, "nobody"), None);
    assert_eq!(
        svc.resolve_addr(&id, "10.9.0.50".parse().unwrap()),
        Some("web1.app".into())
    );
    // In use: refused.
    let e = svc.remove("app").unwrap_err();
    assert_eq!(e.status(), 403);
    assert!(e.to_string().contains("has active endpoints"), "{e}");
    assert_eq!(
        svc.inspect("app").unwrap()["Containers"][&id]["IPv4Address"],
        "10.9.0.50/24"
    );
    // A second container asking the same address.
    let id2 = "b".repeat(64);
    let e = svc
        .attach(&Attach {
            id: &id2,
            name: "web2",
            primary: "app",
            networks: &eps,
            port_bindings: &json!({}),
            exposed: vec![],
            publish_all: false,
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "Address already in use");
    assert!(!svc.sandbox_path(&id2).exists(), "no namespace left behind");

    // The end: everything given back.
    svc.detach(&id, &got.sandbox);
    let calls = dp.take();
    assert!(calls.iter().any(|c| c.starts_with("unplug veth")), "{calls:?}");
    assert!(calls.iter().any(|c| c.contains("ports []")), "{calls:?}");
    assert!(calls.last().unwrap().starts_with("sandbox_remove"), "{calls:?}");
    assert!(svc.get("app").unwrap().endpoints.is_empty());
    svc.remove("app").unwrap();
}

#[test]
fn a_failed_plug_leaves_nothing_and_restarts_reconcile() {
    let d = tempfile::tempdir().unwrap();
    let (svc, dp) = service(d.path());
    let (_, eps) = svc.plan_container("bridge", None, None).unwrap();
    let id = "c".repeat(64);
    let attach = |id: &str| {
        svc.attach(&Attach {
            id,
            name: "x",
            primary: "bridge",
            networks: &eps,
            port_bindings: &json!({}),
            exposed: vec![],
            publish_all: false,
        })
    };
    *dp.fail_plug.lock().unwrap() = true;
    assert!(attach(&id).is_err());
    assert!(svc.get("bridge").unwrap().endpoints.is_empty());
    assert!(!svc.sandbox_path(&id).exists());
    *dp.fail_plug.lock().unwrap() = false;
    let got = attach(&id).unwrap();
    // Allocation goes on after the address the failed start had (as libnetwork's).
    assert_eq!(got.networks["bridge"].ip, Some(Ipv4Addr::new(10, 200, 0, 3)));
    assert!(!got.embedded_dns);
    // berthd restarts while the container ran; it ended meanwhile.
    drop(svc);
    let (svc, dp) = service(d.path());
    assert_eq!(
        svc.get("bridge").unwrap().endpoints.len(),
        1,
        "the address is remembered"
    );
    dp.take();
    svc.reconcile(&|_| false);
    assert!(svc.get("bridge").unwrap().endpoints.is_empty());
    assert!(!got.sandbox.exists());
    let calls = dp.take();
    assert!(calls.iter().any(|c| c.starts_with("unplug")), "{calls:?}");
}

#[test]
fn ipv6_networks_give_both_families() {
    let d = tempfile::tempdir().unwrap();
    let (svc, dp) = service(d.path());
    // dockerd's checks: a v6 subnet needs --ipv6, --ipv6 needs a v6 subnet, no overlap.
    let e = create(
        &svc,
        json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "fd00:1::/64"}]}}),
    )
    .unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    let e = create(&svc, json!({"Name": "x", "EnableIPv6": true})).unwrap_err();
    assert_eq!(e.status(), 403, "{e}");
    assert!(e.to_string().contains("IPv6 address pool"), "{e}");
    dp.take();
    let id = create(
        &svc,
        json!({"Name": "six", "EnableIPv6": true, "IPAM": {"Config": [
            {"Subnet": "10.11.0.0/24"}, {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::fe"}]}}),
    )
    .unwrap();
    // IPv6 forwarding is asked for (once a network has IPv6), then the bridge made.
    assert_eq!(
        dp.take()[..2],
        [
            "forwarding6".to_string(),
            format!("bridge_up br-{} 10.11.0.1/24 fd00:1::fe/64 mtu 1500", &id[..12])
        ]
    );
    let n = svc.inspect("six").unwrap();
    assert_eq!(n["EnableIPv6"], true);
    assert_eq!(
        n["IPAM"]["Config"],
        json!([{"Subnet": "10.11.0.0/24", "Gateway": "10.11.0.1"},
               {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::fe"}])
    );
    let e = create(
        &svc,
        json!({"Name": "y", "EnableIPv6": true, "IPAM": {"Config": [{"Subnet": "fd00:1:0:0:8000::/65"}]}}),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid pool request: Pool overlaps with other one on this address space"
    );
    // --ip6 only where the network has IPv6 and inside its subnet.
    let e = svc
        .plan_container(
            "bridge",
            Some(&json!({"bridge": {"IPAMConfig": {"IPv6Address": "fd00:1::9"}}})),
            None,
        )
        .unwrap_err();
    assert_eq!(e.status(), 400);
    let e = svc
        .plan_container(
            "six",
            Some(&json!({"six": {"IPAMConfig": {"IPv6Address": "fd00:2::9"}}})),
            None,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no configured subnet or ip-range contain the IP address fd00:2::9"
    );
    let (_, eps) = svc
        .plan_container(
            "six",
            Some(&json!({"six": {"IPAMConfig": {"IPv6Address": "fd00:1::9"}}})),
            None,
        )
        .unwrap();
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    let attach = |id: &str, name: &str, eps: &BTreeMap<String, EndpointConfig>| {
        svc.attach(&Attach {
            id,
            name,
            primary: "six",
            networks: eps,
            port_bindings: &Value::Null,
            exposed: vec![],
            publish_all: false,
        })
    };
    dp.take();
    let got = attach(&a, "one", &eps).unwrap();
    let ep = &got.networks["six"];
    assert_eq!(ep.ip6, Some("fd00:1::9".parse().unwrap()));
    assert_eq!(
        (ep.prefix6, ep.gateway6),
        (64, Some("fd00:1::fe".parse().unwrap()))
    );
    assert_eq!(ep.shown()["GlobalIPv6Address"], "fd00:1::9");
    assert_eq!(ep.shown()["IPAMConfig"]["IPv6Address"], "fd00:1::9");
    assert!(
        dp.take()
            .iter()
            .any(|c| c.contains("10.11.0.2/24 gw Some(10.11.0.1) fd00:1::9/64 gw6 Some(fd00:1::fe)")),
        "the plug has both families"
    );
    // The same address again: refused, and the IPv4 address it took is given back.
    let e = attach(&b, "two", &eps).unwrap_err();
    assert_eq!(e.to_string(), "Address already in use");
    let (_, auto) = svc.plan_container("six", None, None).unwrap();
    let got = attach(&b, "two", &auto).unwrap();
    // (Allocation goes on after the last address given, as libnetwork does.)
    assert_eq!(got.networks["six"].ip, Some(Ipv4Addr::new(10, 11, 0, 4)));
    assert_eq!(got.networks["six"].ip6, Some("fd00:1::1".parse().unwrap()));
    // Names resolve to both addresses; the PTR of the v6 one too.
    assert_eq!(
        svc.resolve_name(&b, "one"),
        Some(vec!["10.11.0.2".parse().unwrap(), "fd00:1::9".parse().unwrap()])
    );
    assert_eq!(
        svc.resolve_addr(&b, "fd00:1::9".parse().unwrap()),
        Some("one.six".to_string())
    );
    assert_eq!(
        svc.inspect("six").unwrap()["Containers"][&a]["IPv6Address"],
        "fd00:1::9/64"
    );
    // Released: both addresses can be had again; the record keeps the state across a reopen.
    svc.detach(&a, &svc.sandbox_path(&a));
    drop(got);
    let (svc2, _) = service(d.path());
    let n = svc2.get("six").unwrap();
    assert_eq!(n.ipam.unwrap().in_use(), vec![Ipv4Addr::new(10, 11, 0, 4)]);
    assert_eq!(
        n.ipam6.unwrap().in_use(),
        vec!["fd00:1::1".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn the_default_bridge_with_ipv6() {
    let d = tempfile::tempdir().unwrap();
    let open = |v6: Option<&str>| {
        let dp = Arc::new(Recording::default());
        let mut s = Settings::new(&d.path().join("data"), &d.path().join("run"));
        s.bip = Some((Ipv4Addr::new(10, 200, 0, 1), 24));
        s.ipv6 = v6.map(|c| c.parse().unwrap());
        let svc = NetworkService::open(s, dp.clone(), Arc::new(Events::new())).unwrap();
        (svc, dp)
    };
    let (svc, dp) = open(Some("fd00:5::/64"));
    let calls = dp.take();
    assert!(calls.contains(&"bridge_up berth0 10.200.0.1/24 fd00:5::1/64 mtu 1500".to_string()));
    assert!(calls.contains(&"forwarding6".to_string()), "{calls:?}");
    let b = svc.inspect("bridge").unwrap();
    assert_eq!(b["EnableIPv6"], true);
    let (_, eps) = svc.plan_container("bridge", None, None).unwrap();
    let id = "c".repeat(64);
    let got = svc
        .attach(&Attach {
            id: &id,
            name: "c",
            primary: "bridge",
            networks: &eps,
            port_bindings: &Value::Null,
            exposed: vec![],
            publish_all: false,
        })
        .unwrap();
    assert_eq!(got.networks["bridge"].ip6, Some("fd00:5::2".parse().unwrap()));
    assert!(!got.embedded_dns, "the default bridge has no embedded DNS");
    svc.detach(&id, &svc.sandbox_path(&id));
    drop(svc);
    // IPv6 turned off: the default bridge is made again without it.
    let (svc, _) = open(None);
    let b = svc.inspect("bridge").unwrap();
    assert_eq!(b["EnableIPv6"], false);
    assert_eq!(b["IPAM"]["Config"].as_array().unwrap().len(), 1);
}

#[test]
fn default_bridge_settings_wait_for_its_containers() {
    let d = tempfile::tempdir().unwrap();
    let open = |third: u8| {
        let dp = Arc::new(Recording::default());
        let mut s = Settings::new(&d.path().join("data"), &d.path().join("run"));
        s.bip = Some((Ipv4Addr::new(10, 200, third, 1), 24));
        NetworkService::open(s, dp, Arc::new(Events::new())).unwrap()
    };
    let subnet = |svc: &NetworkService| svc.inspect("bridge").unwrap()["IPAM"]["Config"][0]["Subnet"].clone();
    let svc = open(1);
    let (_, eps) = svc.plan_container("bridge", None, None).unwrap();
    let id = "d".repeat(64);
    svc.attach(&Attach {
        id: &id,
        name: "d",
        primary: "bridge",
        networks: &eps,
        port_bindings: &Value::Null,
        exposed: vec![],
        publish_all: false,
    })
    .unwrap();
    drop(svc);
    // A new bip while a container has an address there: the bridge stays as it was.
    let svc = open(2);
    assert_eq!(subnet(&svc), "10.200.1.0/24");
    // Still running after the restart: nothing changes; ended while berthd was away: the new
    // settings apply once the restart's reconciliation gave its address back.
    svc.reconcile(&|_| true);
    assert_eq!(subnet(&svc), "10.200.1.0/24");
    svc.reconcile(&|_| false);
    assert_eq!(subnet(&svc), "10.200.2.0/24");
    assert_eq!(svc.inspect("bridge").unwrap()["Containers"], json!({}));
}

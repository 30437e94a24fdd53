//! network and volume commands against the bodies and queries docker 28.2.2's CLI sent for
//! the same arguments (captured at API 1.44 by a recording server), and their output from
//! canned API answers.

use crate::commands::testutil::{json_response, run, Server};
use crate::commands::{network, volume, Def};

/// (method, target, body) of one request.
type Sent = (String, String, String);

/// Runs `def` with `args` against a server answering `answers`; (stdout, result, requests).
fn exchange(def: &Def, args: &[&str], answers: Vec<String>) -> (String, Result<(), String>, Vec<Sent>) {
    let server = Server::start(answers);
    let (ctx, out) = crate::commands::testutil::ctx(&server, "", std::env::temp_dir());
    let r = run(def, &ctx, args).map_err(|f| f.message);
    drop(ctx);
    let reqs = server
        .finish()
        .into_iter()
        .map(|q| (q.method, q.target, String::from_utf8(q.body).unwrap()))
        .collect();
    (out.text(), r, reqs)
}

fn sent(def: &Def, args: &[&str], answer: &str) -> Sent {
    let (_, _, reqs) = exchange(def, args, vec![json_response(200, answer)]);
    reqs.into_iter().next().expect("a request")
}

#[test]
fn create_bodies_as_docker_sends_them() {
    let (m, t, b) = sent(
        &network::CREATE,
        &[
            "--subnet",
            "10.5.0.0/16",
            "--gateway",
            "10.5.0.1",
            "--ip-range",
            "10.5.1.0/24",
            "--aux-address",
            "a=10.5.0.9",
            "-o",
            "x=1",
            "--label",
            "l=2",
            "--internal",
            "--ipv6",
            "--attachable",
            "--ipam-opt",
            "io=3",
            "n1",
        ],
        r#"{"Id":"abc","Warning":""}"#,
    );
    assert_eq!((m.as_str(), t.as_str()), ("POST", "/v1.44/networks/create"));
    assert_eq!(
        b,
        r#"{"Driver":"bridge","Scope":"","EnableIPv6":true,"IPAM":{"Driver":"default","Options":{"io":"3"},"Config":[{"Subnet":"10.5.0.0/16","IPRange":"10.5.1.0/24","Gateway":"10.5.0.1","AuxiliaryAddresses":{"a":"10.5.0.9"}}]},"Internal":true,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{"x":"1"},"Labels":{"l":"2"},"Name":"n1"}"#
    );
    let (_, _, b) = sent(&network::CREATE, &["n0"], r#"{"Id":"abc"}"#);
    assert_eq!(
        b,
        r#"{"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{},"Name":"n0"}"#
    );
    let (_, _, b) = sent(
        &network::CREATE,
        &[
            "-d",
            "macvlan",
            "--subnet",
            "10.5.0.0/16,10.6.0.0/16",
            "--gateway",
            "10.6.0.1",
            "n2",
        ],
        r#"{"Id":"abc"}"#,
    );
    assert_eq!(
        b,
        r#"{"Driver":"macvlan","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.5.0.0/16"},{"Subnet":"10.6.0.0/16","Gateway":"10.6.0.1"}]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{},"Name":"n2"}"#
    );
    let (_, _, b) = sent(
        &network::CREATE,
        &[
            "--ipv6=false",
            "--ipv4=false",
            "--scope",
            "local",
            "--config-only",
            "-o",
            "noeq",
            "n3",
        ],
        r#"{"Id":"abc"}"#,
    );
    assert_eq!(
        b,
        r#"{"Driver":"bridge","Scope":"local","EnableIPv4":false,"EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":true,"ConfigFrom":null,"Options":{"noeq":""},"Labels":{},"Name":"n3"}"#
    );
    let (out, r, _) = exchange(
        &network::CREATE,
        &["n0"],
        vec![json_response(201, r#"{"Id":"0123abc","Warning":""}"#)],
    );
    assert_eq!((out.as_str(), r), ("0123abc\n", Ok(())));
}

#[test]
fn create_errors_as_docker() {
    let err = |args: &[&str]| exchange(&network::CREATE, args, vec![]).1.unwrap_err();
    assert_eq!(
        err(&["--subnet", "10.5.0.0/16", "--gateway", "10.7.0.1", "n"]),
        "no matching subnet for gateway 10.7.0.1"
    );
    assert_eq!(
        err(&["--subnet", "10.5.0.0/16", "--subnet", "10.5.1.0/24", "n"]),
        "multiple overlapping subnet configuration is not supported"
    );
    assert_eq!(
        err(&["--ip-range", "10.0.0.0/8", "n"]),
        "every ip-range or gateway must have a corresponding subnet"
    );
    assert_eq!(
        err(&["--subnet", "10.5.0.0/16", "--aux-address", "x", "n"]),
        "no matching subnet for aux-address "
    );
    assert_eq!(
        err(&[
            "--subnet",
            "10.5.0.0/16",
            "--ip-range",
            "10.5.1.0/24",
            "--ip-range",
            "10.5.2.0/24",
            "n"
        ]),
        "every ip-range or gateway must have a corresponding subnet"
    );
    assert_eq!(
        err(&["--subnet", "x", "--subnet", "10.5.0.0/16", "n"]),
        "invalid subnet: invalid CIDR address: x"
    );
    assert!(err(&["--label", "a b", "n"]).starts_with(
        "invalid argument \"a b\" for \"--label\" flag: label 'a b' contains whitespaces\n\nUsage:  berth create [OPTIONS] NETWORK"
    ));
    assert!(err(&[]).starts_with("berth: 'berth create' requires 1 argument\n"));
}

#[test]
fn connect_and_disconnect_bodies() {
    let (_, t, b) = sent(
        &network::CONNECT,
        &[
            "--ip",
            "10.0.0.5",
            "--ip6",
            "fd00::5",
            "--alias",
            "a1",
            "--alias",
            "a2,a3",
            "--link-local-ip",
            "169.254.1.1",
            "--driver-opt",
            "k=v",
            "n1",
            "c1",
        ],
        "",
    );
    assert_eq!(t, "/v1.44/networks/n1/connect");
    assert_eq!(
        b,
        r#"{"Container":"c1","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.0.0.5","IPv6Address":"fd00::5","LinkLocalIPs":["169.254.1.1"]},"Links":null,"Aliases":["a1","a2","a3"],"MacAddress":"","DriverOpts":{"k":"v"},"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}"#
    );
    let (_, _, b) = sent(&network::CONNECT, &["n1", "c1"], "");
    assert_eq!(
        b,
        r#"{"Container":"c1","EndpointConfig":{"IPAMConfig":{},"Links":null,"Aliases":[],"MacAddress":"","DriverOpts":{},"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}"#
    );
    let (_, r, _) = exchange(&network::CONNECT, &["--driver-opt", "bad", "n1", "c1"], vec![]);
    assert_eq!(r.unwrap_err(), "invalid key/value pair format in driver options");
    let (_, t, b) = sent(&network::DISCONNECT, &["-f", "n1", "c1"], "");
    assert_eq!(t, "/v1.44/networks/n1/disconnect");
    assert_eq!(b, r#"{"Container":"c1","Force":true}"#);
}

const NETS: &str = r#"[
 {"Name":"net10","Id":"aaaaaaaaaaaabbbbbbbbbbbb","Created":"2026-11-25T11:00:00.5Z","Scope":"local","Driver":"bridge","EnableIPv4":true,"EnableIPv6":false,"Internal":false,"Labels":{"b":"2","a":"1"}},
 {"Name":"net2","Id":"cccccccccccc000000000000","Created":"2026-11-25T11:00:00Z","Scope":"local","Driver":"bridge","EnableIPv6":true,"Internal":true,"Labels":{}}
]"#;

#[test]
fn ls_like_docker() {
    let (out, _, reqs) = exchange(
        &network::LS,
        &["-f", "driver=bridge", "-f", "name=x"],
        vec![json_response(200, NETS)],
    );
    assert_eq!(
        reqs[0].1,
        "/v1.44/networks?filters=%7B%22driver%22%3A%7B%22bridge%22%3Atrue%7D%2C%22name%22%3A%7B%22x%22%3Atrue%7D%7D"
    );
    assert_eq!(
        out,
        "NETWORK ID     NAME      DRIVER    SCOPE\ncccccccccccc   net2      bridge    local\naaaaaaaaaaaa   net10     bridge    local\n"
    );
    let (out, _, _) = exchange(
        &network::LS,
        &["--format", "json"],
        vec![json_response(200, NETS)],
    );
    assert_eq!(
        out.lines().nth(1).unwrap(),
        r#"{"CreatedAt":"2026-11-25 11:00:00.5 +0000 UTC","Driver":"bridge","ID":"aaaaaaaaaaaa","IPv4":"true","IPv6":"false","Internal":"false","Labels":"a=1,b=2","Name":"net10","Scope":"local"}"#
    );
    let (out, _, _) = exchange(
        &network::LS,
        &["-q", "--no-trunc"],
        vec![json_response(200, NETS)],
    );
    assert_eq!(out, "cccccccccccc000000000000\naaaaaaaaaaaabbbbbbbbbbbb\n");
}

#[test]
fn rm_prune_and_inspect() {
    let (out, r, reqs) = exchange(
        &network::RM,
        &["n1", "n2"],
        vec![
            json_response(200, r#"{"Name":"n1","Ingress":false}"#),
            json_response(204, ""),
            json_response(404, r#"{"message":"network n2 not found"}"#),
            json_response(404, r#"{"message":"network n2 not found"}"#),
        ],
    );
    assert_eq!((out.as_str(), r), ("n1\n", Err("exit status 1".to_string())));
    assert_eq!(reqs[1].0, "DELETE");
    let (_, r, _) = exchange(
        &network::RM,
        &["-f", "n2"],
        vec![
            json_response(404, r#"{"message":"network n2 not found"}"#),
            json_response(404, r#"{"message":"network n2 not found"}"#),
        ],
    );
    assert_eq!(r, Ok(()));
    let (out, _, reqs) = exchange(
        &network::PRUNE,
        &["-f", "--filter", "until=1h"],
        vec![json_response(200, r#"{"NetworksDeleted":["n1","n2"]}"#)],
    );
    assert_eq!(
        reqs[0].1,
        "/v1.44/networks/prune?filters=%7B%22until%22%3A%7B%221h%22%3Atrue%7D%7D"
    );
    assert_eq!(out, "Deleted Networks:\nn1\nn2\n\n");
    let (out, r, reqs) = exchange(
        &network::INSPECT,
        &["-v", "n1"],
        vec![
            json_response(200, "{}"),
            json_response(200, r#"{"Name":"n1","Id":"x"}"#),
        ],
    );
    assert_eq!(reqs[1].1, "/v1.44/networks/n1?verbose=true");
    assert_eq!(
        (out.as_str(), r),
        (
            "[\n    {\n        \"Name\": \"n1\",\n        \"Id\": \"x\"\n    }\n]\n",
            Ok(())
        )
    );
}

#[test]
fn volume_bodies_and_output() {
    let (m, t, b) = sent(
        &volume::CREATE,
        &[
            "-d",
            "local",
            "--label",
            "a=1",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=1m",
            "v1",
        ],
        r#"{"Name":"v1"}"#,
    );
    assert_eq!((m.as_str(), t.as_str()), ("POST", "/v1.44/volumes/create"));
    assert_eq!(
        b,
        r#"{"Driver":"local","DriverOpts":{"device":"tmpfs","o":"size=1m","type":"tmpfs"},"Labels":{"a":"1"},"Name":"v1"}"#
    );
    let (out, _, reqs) = exchange(
        &volume::CREATE,
        &[],
        vec![json_response(201, r#"{"Name":"f00d"}"#)],
    );
    assert_eq!(
        (out.as_str(), reqs[0].2.as_str()),
        ("f00d\n", r#"{"Driver":"local"}"#)
    );
    let (_, r, _) = exchange(&volume::CREATE, &["--name", "v2", "v3"], vec![]);
    assert_eq!(
        r.unwrap_err(),
        "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
    );
    let vols = r#"{"Volumes":[{"Name":"v10","Driver":"local","Mountpoint":"/m/v10","Labels":null,"Scope":"local","Options":null},{"Name":"v9","Driver":"local","Mountpoint":"/m/v9","Labels":{"x":"1"},"Scope":"local","Options":{},"CreatedAt":"2026-11-25T11:00:00Z"}],"Warnings":null}"#;
    let (out, _, reqs) = exchange(
        &volume::LS,
        &["-f", "dangling=true"],
        vec![json_response(200, vols)],
    );
    assert_eq!(
        reqs[0].1,
        "/v1.44/volumes?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D"
    );
    assert_eq!(out, "DRIVER    VOLUME NAME\nlocal     v9\nlocal     v10\n");
    let (out, _, _) = exchange(
        &volume::LS,
        &["--format", "{{.Name}} {{.Labels}} {{.Size}}"],
        vec![json_response(200, vols)],
    );
    assert_eq!(out, "v9 x=1 N/A\nv10  N/A\n");
    let (out, _, _) = exchange(
        &volume::INSPECT,
        &["v9"],
        vec![
            json_response(200, "{}"),
            json_response(
                200,
                r#"{"Scope":"local","Name":"v9","Driver":"local","CreatedAt":"2026-11-25T11:00:00Z","Mountpoint":"/m/v9","Labels":null,"Options":null}"#,
            ),
        ],
    );
    assert_eq!(
        out,
        "[\n    {\n        \"CreatedAt\": \"2026-11-25T11:00:00Z\",\n        \"Driver\": \"local\",\n        \"Labels\": null,\n        \"Mountpoint\": \"/m/v9\",\n        \"Name\": \"v9\",\n        \"Options\": null,\n        \"Scope\": \"local\"\n    }\n]\n"
    );
}

#[test]
fn volume_rm_and_prune() {
    let (out, r, reqs) = exchange(
        &volume::RM,
        &["-f", "v1", "v2"],
        vec![
            json_response(204, ""),
            json_response(409, r#"{"message":"remove v2: volume is in use"}"#),
        ],
    );
    assert_eq!(reqs[0].1, "/v1.44/volumes/v1?force=1");
    assert_eq!(out, "v1\n");
    assert_eq!(
        r.unwrap_err(),
        "Error response from daemon: remove v2: volume is in use"
    );
    let (out, _, reqs) = exchange(
        &volume::PRUNE,
        &["-a", "-f", "--filter", "label=x"],
        vec![json_response(
            200,
            r#"{"VolumesDeleted":["v1"],"SpaceReclaimed":2048}"#,
        )],
    );
    assert_eq!(
        reqs[0].1,
        "/v1.44/volumes/prune?filters=%7B%22all%22%3A%7B%22true%22%3Atrue%7D%2C%22label%22%3A%7B%22x%22%3Atrue%7D%7D"
    );
    assert_eq!(out, "Deleted Volumes:\nv1\n\nTotal reclaimed space: 2.048kB\n");
    let (_, r, _) = exchange(&volume::PRUNE, &["-a", "-f", "--filter", "all=1"], vec![]);
    assert_eq!(
        r.unwrap_err(),
        "conflicting options: cannot specify both --all and --filter all=1"
    );
}

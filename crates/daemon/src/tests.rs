//! The container routes through the real HTTP stack with real services on temporary directories:
//! shapes, status codes and dockerd's messages for everything that needs no running container
//! (create, inspect, list with filters, rename, conflicts, wait, remove, events), and a start whose
//! shim cannot be found failing cleanly. No root and no network needed.

use std::sync::Arc;
use std::time::Duration;

use berth_engine::containers::{self as ctr, ContainerService};
use berth_engine::events::Events;
use berth_engine::images::{self, ImageService};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{api, info, serve_connection};

struct Server {
    sock: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A tar with one file: enough of an image to create containers from.
fn tiny_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o755);
    h.set_cksum();
    b.append_data(&mut h, "bin/true", &b"#!\n"[..]).unwrap();
    b.into_inner().unwrap()
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Events::new());
    let images = Arc::new(
        ImageService::open(
            images::Config {
                root: dir.path().join("data/image"),
                insecure_registries: vec![],
                max_concurrent_downloads: 3,
                max_concurrent_uploads: 5,
                storage_driver: Some("copy".into()),
            },
            events.clone(),
        )
        .unwrap(),
    );
    let reference = "tiny:1".parse().unwrap();
    images
        .import(
            &mut &tiny_tar()[..],
            Some(&reference),
            "",
            &["CMD [\"/bin/true\"]".to_string()],
            None,
        )
        .unwrap();
    let mut net_settings =
        berth_engine::networks::Settings::new(&dir.path().join("data"), &dir.path().join("exec"));
    net_settings.bip = Some(("10.250.0.1".parse().unwrap(), 24));
    let networks = berth_engine::networks::NetworkService::open(
        net_settings,
        Arc::new(berth_engine::networks::dataplane::Recording::default()),
        events.clone(),
    )
    .unwrap();
    let containers = ContainerService::open(
        ctr::Config {
            data: dir.path().join("data/containers"),
            run: dir.path().join("exec/containers"),
            runtime_root: dir.path().join("exec/runtime"),
            runtime: "/nonexistent/berth-runtime".into(),
            shim: "/nonexistent/berth-shim".into(),
            cgroup_v2: true,
            seccomp: true,
            log_max_size: None,
            log_max_files: None,
            volumes: dir.path().join("data/volumes"),
        },
        images.clone(),
        events.clone(),
        networks.clone(),
    )
    .unwrap();
    let state = Arc::new(api::State {
        containers,
        networks,
        images,
        events,
        info: info::Static {
            id: "test".into(),
            data_root: dir.path().display().to_string(),
            insecure_registries: vec![],
            debug: false,
            runtime_path: "berth-runtime".into(),
        },
        debug: false,
    });
    let sock = dir.path().join("api.sock");
    let l = tokio::net::UnixListener::bind(&sock).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            serve_connection(s, state.clone());
        }
    });
    Server { sock, _dir: dir }
}

/// One request; the status and the body parsed as JSON (Null when empty or not JSON).
async fn call(s: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut c = tokio::net::UnixStream::connect(&s.sock).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut out))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text[9..12].parse().unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // Chunked bodies: the JSON is the first chunk.
    let payload = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        rest.split("\r\n").nth(1).unwrap_or("").to_string()
    } else {
        rest.to_string()
    };
    (code, serde_json::from_str(payload.trim()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn container_routes_with_real_services() {
    let s = server().await;
    // create: 201, an ID, no warnings.
    let (code, v) = call(
        &s,
        "POST",
        "/v1.47/containers/create?name=first",
        Some(json!({"Image": "tiny:1"})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let id = v["Id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(v["Warnings"], json!([]));
    // inspect: docker's shape, the image's command merged in, the hostname.
    let (code, v) = call(&s, "GET", "/containers/first/json", None).await;
    assert_eq!(code, 200);
    assert_eq!(v["Name"], "/first");
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["Path"], "/bin/true");
    assert_eq!(v["Config"]["Hostname"], json!(&id[..12]));
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "no");
    assert_eq!(v["HostConfig"]["NetworkMode"], "bridge");
    assert_eq!(v["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], "");
    assert_eq!(
        v["NetworkSettings"]["Networks"]["bridge"]["NetworkID"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"));
    // Lookups by name, ID prefix; a missing one is docker's 404.
    assert_eq!(
        call(&s, "GET", &format!("/containers/{}/json", &id[..8]), None)
            .await
            .0,
        200
    );
    let (code, v) = call(&s, "GET", "/containers/nope/json", None).await;
    assert_eq!(
        (code, v["message"].as_str().unwrap()),
        (404, "No such container: nope")
    );
    // The name is taken.
    let (code, v) = call(
        &s,
        "POST",
        "/containers/create?name=first",
        Some(json!({"Image": "tiny:1"})),
    )
    .await;
    assert_eq!(code, 409);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("The container name \"/first\" is already in use"));
    // Bad requests: an unknown image, a bad name, a bad restart policy, bad JSON, a bad capability.
    let (code, v) = call(
        &s,
        "POST",
        "/containers/create",
        Some(json!({"Image": "missing"})),
    )
    .await;
    assert_eq!(
        (code, v["message"].as_str().unwrap()),
        (404, "No such image: missing:latest")
    );
    let (code, _) = call(
        &s,
        "POST",
        "/containers/create?name=-x",
        Some(json!({"Image": "tiny:1"})),
    )
    .await;
    assert_eq!(code, 400);
    let bad_policy = json!({"Image": "tiny:1", "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}});
    let (code, v) = call(&s, "POST", "/containers/create", Some(bad_policy)).await;
    assert_eq!(code, 400);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("maximum retry count can only be used with 'on-failure'"));
    let (code, _) = call(&s, "POST", "/containers/create", Some(json!("not an object"))).await;
    assert_eq!(code, 400);
    let bad_cap = json!({"Image": "tiny:1", "HostConfig": {"CapAdd": ["NOPE"]}});
    let (code, v) = call(&s, "POST", "/containers/create", Some(bad_cap)).await;
    assert_eq!(code, 400);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("unknown capability: \"CAP_NOPE\""));
    let (code, _) = call(
        &s,
        "POST",
        "/containers/create",
        Some(json!({"Image": "tiny:1", "HostConfig": {"NetworkMode": "mynet"}})),
    )
    .await;
    assert_eq!(code, 404);
    // A second container with labels; list with filters.
    let (_, v) = call(
        &s,
        "POST",
        "/containers/create?name=second",
        Some(json!({"Image": "tiny:1", "Labels": {"tier": "web"}})),
    )
    .await;
    let second = v["Id"].as_str().unwrap().to_string();
    let (_, v) = call(&s, "GET", "/containers/json", None).await;
    assert_eq!(v, json!([]), "created containers are not running");
    let (_, v) = call(&s, "GET", "/containers/json?all=1", None).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["Id"], json!(second), "newest first");
    assert_eq!(v[0]["Status"], "Created");
    let f = "%7B%22label%22%3A%5B%22tier%3Dweb%22%5D%7D"; // {"label":["tier=web"]}
    let (_, v) = call(&s, "GET", &format!("/containers/json?all=1&filters={f}"), None).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (code, _) = call(
        &s,
        "GET",
        "/containers/json?filters=%7B%22status%22%3A%5B%22sleepy%22%5D%7D",
        None,
    )
    .await;
    assert_eq!(code, 400);
    // wait on a container that is not running answers at once.
    let (code, v) = call(&s, "POST", "/containers/second/wait", None).await;
    assert_eq!((code, v["StatusCode"].clone()), (200, json!(0)));
    // rename, and its conflicts.
    assert_eq!(
        call(&s, "POST", "/containers/second/rename?name=third", None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&s, "POST", "/containers/third/rename?name=first", None)
            .await
            .0,
        409
    );
    // stop and kill of a container that is not running.
    assert_eq!(call(&s, "POST", "/containers/third/stop", None).await.0, 304);
    let (code, v) = call(&s, "POST", "/containers/third/kill", None).await;
    assert_eq!(code, 409);
    assert!(v["message"].as_str().unwrap().contains("is not running"));
    assert_eq!(
        call(
            &s,
            "POST",
            "/containers/third/exec",
            Some(json!({"Cmd": ["true"]}))
        )
        .await
        .0,
        409
    );
    // A start that cannot happen (no shim; without root not even the mount) fails with the
    // reason and leaves the container created.
    let (code, v) = call(&s, "POST", "/containers/third/start", None).await;
    assert_eq!(code, 500);
    let why = v["message"].as_str().unwrap();
    assert!(
        why.contains("/nonexistent") || why.contains("mount the root filesystem"),
        "{v}"
    );
    let (_, v) = call(&s, "GET", "/containers/third/json", None).await;
    assert_eq!(v["State"]["Status"], "created");
    assert!(!v["State"]["Error"].as_str().unwrap().is_empty());
    // An image in use is not deleted without force.
    let (code, v) = call(&s, "DELETE", "/images/tiny:1", None).await;
    assert_eq!(code, 409, "{v}");
    // remove; then it is gone, and so is its name.
    assert_eq!(call(&s, "DELETE", "/containers/third", None).await.0, 204);
    assert_eq!(call(&s, "DELETE", "/containers/third", None).await.0, 404);
    assert_eq!(
        call(&s, "POST", "/containers/first/rename?name=third", None)
            .await
            .0,
        204
    );
    // prune takes the rest.
    let (code, v) = call(&s, "POST", "/containers/prune", None).await;
    assert_eq!(code, 200);
    assert_eq!(v["ContainersDeleted"], json!([id]));
    // The events of all this.
    let (_, _) = call(&s, "GET", "/version", None).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut c = tokio::net::UnixStream::connect(&s.sock).await.unwrap();
    let req = format!(
        "GET /events?since=0&until={}&filters=%7B%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        now + 1
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    for action in ["\"create\"", "\"rename\"", "\"destroy\""] {
        assert!(out.contains(action), "no {action} in {out}");
    }
}

#[tokio::test]
async fn network_routes_with_real_services() {
    let s = server().await;
    let (code, v) = call(&s, "GET", "/v1.47/networks", None).await;
    assert_eq!(code, 200);
    let mut names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["bridge", "host", "none"]);
    let body = json!({"Name": "web", "Driver": "bridge", "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.77.0.0/24"}]}, "Labels": {"env": "t"}});
    let (code, v) = call(&s, "POST", "/networks/create", Some(body.clone())).await;
    assert_eq!(code, 201, "{v}");
    let nid = v["Id"].as_str().unwrap().to_string();
    let (code, v) = call(&s, "POST", "/networks/create", Some(body)).await;
    assert_eq!(
        (code, v["message"].as_str().unwrap()),
        (409, "network with name web already exists")
    );
    let (code, v) = call(&s, "GET", "/networks/web", None).await;
    assert_eq!(code, 200);
    assert_eq!(v["Id"], nid.as_str());
    assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.77.0.1");
    let (code, v) = call(
        &s,
        "GET",
        "/networks?filters=%7B%22label%22%3A%7B%22env%3Dt%22%3Atrue%7D%7D",
        None,
    )
    .await;
    assert_eq!((code, v.as_array().unwrap().len()), (200, 1));
    // A container on it, with an address and an alias; another one connected later.
    let (code, v) = call(
        &s,
        "POST",
        "/containers/create?name=app",
        Some(json!({"Image": "tiny:1", "HostConfig": {"NetworkMode": "web"},
            "NetworkingConfig": {"EndpointsConfig": {"web": {"Aliases": ["api"], "IPAMConfig": {"IPv4Address": "10.77.0.9"}}}}})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let (_, v) = call(&s, "GET", "/containers/app/json", None).await;
    assert_eq!(v["NetworkSettings"]["Networks"]["web"]["Aliases"], json!(["api"]));
    assert_eq!(
        v["NetworkSettings"]["Networks"]["web"]["IPAMConfig"]["IPv4Address"],
        "10.77.0.9"
    );
    let (code, v) = call(
        &s,
        "POST",
        "/containers/create?name=bad",
        Some(json!({"Image": "tiny:1", "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}}})),
    )
    .await;
    assert_eq!(code, 400, "{v}");
    let (code, _) = call(
        &s,
        "POST",
        "/containers/create?name=other",
        Some(json!({"Image": "tiny:1"})),
    )
    .await;
    assert_eq!(code, 201);
    let (code, v) = call(
        &s,
        "POST",
        "/networks/web/connect",
        Some(json!({"Container": "other", "EndpointConfig": {"Aliases": ["o"]}})),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let (_, v) = call(&s, "GET", "/containers/other/json", None).await;
    assert_eq!(v["NetworkSettings"]["Networks"]["web"]["Aliases"], json!(["o"]));
    let (code, v) = call(
        &s,
        "POST",
        "/networks/web/connect",
        Some(json!({"Container": "other"})),
    )
    .await;
    assert_eq!(code, 403, "{v}");
    // Prune keeps networks containers are configured on; disconnect, then remove.
    let (code, v) = call(&s, "POST", "/networks/prune", None).await;
    assert_eq!((code, v["NetworksDeleted"].clone()), (200, json!([])));
    let (code, _) = call(
        &s,
        "POST",
        "/networks/web/disconnect",
        Some(json!({"Container": "other"})),
    )
    .await;
    assert_eq!(code, 200);
    let (code, v) = call(
        &s,
        "POST",
        "/networks/web/disconnect",
        Some(json!({"Container": "other"})),
    )
    .await;
    assert_eq!(code, 403, "{v}");
    let (code, v) = call(&s, "DELETE", "/networks/bridge", None).await;
    assert_eq!(code, 403, "{v}");
    let (code, _) = call(&s, "DELETE", &format!("/networks/{}", &nid[..10]), None).await;
    assert_eq!(code, 204);
    let (code, v) = call(&s, "GET", "/networks/web", None).await;
    assert_eq!(
        (code, v["message"].as_str().unwrap()),
        (404, "network web not found")
    );
}

/// The volume routes, and volumes through container create/inspect/remove (no container runs).
#[tokio::test]
async fn volume_routes_with_real_services() {
    let s = server().await;
    let (code, v) = call(
        &s,
        "POST",
        "/v1.47/volumes/create",
        Some(json!({"Name": "data", "Labels": {"team": "a"}, "DriverOpts": {}})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["Name"], "data");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["team"], "a");
    assert!(v["Mountpoint"]
        .as_str()
        .unwrap()
        .ends_with("data/volumes/data/_data"));
    let (code, v) = call(&s, "POST", "/volumes/create", Some(json!({"Name": "a/b"}))).await;
    assert_eq!(code, 400);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("create a/b: \"a/b\" includes invalid characters"));
    let (code, v) = call(
        &s,
        "POST",
        "/volumes/create",
        Some(json!({"Name": "x1", "Driver": "flocker"})),
    )
    .await;
    assert_eq!(code, 404, "{v}");
    // inspect, list with filters
    let (code, v) = call(&s, "GET", "/volumes/data", None).await;
    assert_eq!((code, v["Name"].as_str().unwrap()), (200, "data"));
    let (code, v) = call(&s, "GET", "/volumes/nope", None).await;
    assert_eq!(
        (code, v["message"].as_str().unwrap()),
        (404, "get nope: no such volume")
    );
    let (code, v) = call(
        &s,
        "GET",
        "/volumes?filters=%7B%22label%22%3A%7B%22team%3Da%22%3Atrue%7D%7D",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["Volumes"].as_array().unwrap().len(), 1);
    assert_eq!(v["Warnings"], Value::Null);
    let (code, _) = call(
        &s,
        "GET",
        "/volumes?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
        None,
    )
    .await;
    assert_eq!(code, 400);

    // A container naming the volume, a bind and an anonymous volume.
    let host_dir = s._dir.path().join("hostdir");
    let body = json!({
        "Image": "tiny:1",
        "Volumes": {"/anon": {}},
        "HostConfig": {"Binds": ["data:/data", format!("{}:/h:ro", host_dir.display())]},
    });
    let (code, v) = call(&s, "POST", "/containers/create?name=user", Some(body)).await;
    assert_eq!(code, 201, "{v}");
    let (_, c) = call(&s, "GET", "/containers/user/json", None).await;
    let mounts = c["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 3, "{mounts:?}");
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Name"], "data");
    assert_eq!(mounts[0]["Mode"], "z");
    assert_eq!(mounts[1]["Type"], "bind");
    assert_eq!(mounts[1]["RW"], false);
    assert_eq!(mounts[1]["Propagation"], "rprivate");
    let anon = mounts[2]["Name"].as_str().unwrap().to_string();
    assert_eq!(anon.len(), 64);
    let (_, v) = call(&s, "GET", &format!("/volumes/{anon}"), None).await;
    assert_eq!(v["Labels"]["com.docker.volume.anonymous"], "");
    // In use: refused even with force.
    let (code, v) = call(&s, "DELETE", "/volumes/data?force=1", None).await;
    let id = c["Id"].as_str().unwrap();
    assert_eq!(
        (code, v["message"].as_str().unwrap().to_string()),
        (409, format!("remove data: volume is in use - [{id}]"))
    );
    // dangling=false lists the volumes in use; df counts them.
    let (_, v) = call(
        &s,
        "GET",
        "/volumes?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D",
        None,
    )
    .await;
    assert_eq!(v["Volumes"].as_array().unwrap().len(), 2);
    let (_, v) = call(&s, "GET", "/system/df", None).await;
    assert_eq!(v["Volumes"].as_array().unwrap().len(), 2);
    // A bad spec makes nothing: no container, no volume.
    let bad = json!({"Image": "tiny:1", "HostConfig": {"Binds": ["fresh:/x"], "Mounts": [{"Type": "bind", "Source": "/nonexistent/src", "Target": "/y"}]}});
    let (code, v) = call(&s, "POST", "/containers/create", Some(bad)).await;
    assert_eq!(
        (code, v["message"].as_str().unwrap()),
        (
            400,
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/src"
        )
    );
    assert_eq!(call(&s, "GET", "/volumes/fresh", None).await.0, 404);
    let dup = json!({"Image": "tiny:1", "HostConfig": {"Binds": ["/a:/x", "/b:/x"]}});
    let (code, v) = call(&s, "POST", "/containers/create", Some(dup)).await;
    assert_eq!(
        (code, v["message"].as_str().unwrap()),
        (400, "Duplicate mount point: /x")
    );
    // --volumes-from: the same volumes, read-only.
    let from = json!({"Image": "tiny:1", "HostConfig": {"VolumesFrom": ["user:ro"]}});
    let (code, _) = call(&s, "POST", "/containers/create?name=second", Some(from)).await;
    assert_eq!(code, 201);
    let (_, c2) = call(&s, "GET", "/containers/second/json", None).await;
    assert!(c2["Mounts"].as_array().unwrap().iter().all(|m| m["RW"] == false));
    let (code, v) = call(
        &s,
        "POST",
        "/containers/create",
        Some(json!({"Image": "tiny:1", "HostConfig": {"VolumesFrom": ["ghost"]}})),
    )
    .await;
    assert_eq!(
        (code, v["message"].as_str().unwrap()),
        (404, "No such container: ghost")
    );
    // rm -v: the anonymous volume goes once no container uses it; the named one stays.
    assert_eq!(call(&s, "DELETE", "/containers/second?v=1", None).await.0, 204);
    assert_eq!(call(&s, "DELETE", "/containers/user?v=1", None).await.0, 204);
    assert_eq!(call(&s, "GET", &format!("/volumes/{anon}"), None).await.0, 404);
    assert_eq!(call(&s, "GET", "/volumes/data", None).await.0, 200);
    // prune: anonymous only by default, then all.
    call(&s, "POST", "/volumes/create", Some(json!({}))).await;
    let (code, v) = call(&s, "POST", "/volumes/prune", None).await;
    assert_eq!(code, 200);
    assert_eq!(v["VolumesDeleted"].as_array().unwrap().len(), 1);
    let (_, v) = call(
        &s,
        "POST",
        "/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D",
        None,
    )
    .await;
    assert_eq!(v["VolumesDeleted"], json!(["data"]));
    assert_eq!(call(&s, "DELETE", "/volumes/data", None).await.0, 404);
    assert_eq!(call(&s, "DELETE", "/volumes/data?force=true", None).await.0, 204);
    let (code, v) = call(&s, "GET", "/volumes", None).await;
    assert_eq!((code, v["Volumes"].clone()), (200, json!([])));
}

//! The image service against an in-process fake registry on 127.0.0.1: Bearer token auth, a layer
//! whose connection drops half way (resumed with Range), a registry that lies about a blob, manifest
//! lists, schema 1; then tag, remove, save/load and import on what was pulled.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_image::builder::{layer_from_dir, store_image};
use berth_image::manifest::{media, RunConfig};
use berth_image::{Digest, Platform, Reference, Store};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;

use super::*;
use crate::events::Events;
use crate::progress::{Message, Progress};

/// What the fake registry serves and how it misbehaves.
#[derive(Default)]
struct Fake {
    /// (repo, tag or digest) -> (media type, body)
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    /// Blob digests whose first GET stops after half the bytes.
    truncate_once: Mutex<Vec<String>>,
    /// Blob digests served with other content.
    lie: Mutex<Vec<String>>,
    /// Blob digests whose first GET answers 500.
    fail_once: Mutex<Vec<String>>,
    ranges_seen: AtomicUsize,
    token_requests: AtomicUsize,
    addr: String,
}

const TOKEN: &str = "secret-token";

type FakeBody = BoxBody<Bytes, std::io::Error>;

async fn serve(fake: Arc<Fake>, req: Request<Incoming>) -> Result<Response<FakeBody>, Infallible> {
    let path = req.uri().path().to_string();
    let resp = |code: u16, body: Vec<u8>| {
        Response::builder()
            .status(code)
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .unwrap()
    };
    if path == "/token" {
        fake.token_requests.fetch_add(1, Ordering::SeqCst);
        return Ok(resp(200, format!(r#"{{"token":"{TOKEN}"}}"#).into_bytes()));
    }
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorized {
        let mut r = resp(
            401,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        );
        r.headers_mut().insert(
            "www-authenticate",
            format!(r#"Bearer realm="http://{}/token",service="fake""#, fake.addr)
                .parse()
                .unwrap(),
        );
        return Ok(r);
    }
    let rest = path.trim_start_matches("/v2/");
    if let Some((repo, object)) = rest.split_once("/manifests/") {
        return Ok(
            match fake.manifests.get(&(repo.to_string(), object.to_string())) {
                Some((mt, body)) => {
                    let mut r = resp(200, body.clone());
                    r.headers_mut().insert("content-type", mt.parse().unwrap());
                    r
                }
                None => resp(
                    404,
                    br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
                ),
            },
        );
    }
    if let Some((_, digest)) = rest.split_once("/blobs/") {
        let Some(data) = fake.blobs.get(digest) else {
            return Ok(resp(
                404,
                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#.to_vec(),
            ));
        };
        {
            let mut f = fake.fail_once.lock().unwrap();
            if let Some(i) = f.iter().position(|d| d == digest) {
                f.remove(i);
                return Ok(resp(
                    500,
                    br#"{"errors":[{"code":"UNKNOWN","message":"try again"}]}"#.to_vec(),
                ));
            }
        }
        if fake.lie.lock().unwrap().contains(&digest.to_string()) {
            let mut other = data.clone();
            other.reverse();
            return Ok(resp(200, other));
        }
        if let Some(range) = req.headers().get("range").and_then(|v| v.to_str().ok()) {
            fake.ranges_seen.fetch_add(1, Ordering::SeqCst);
            let from: usize = range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            let mut r = resp(206, data[from..].to_vec());
            r.headers_mut().insert(
                "content-range",
                format!("bytes {from}-{}/{}", data.len() - 1, data.len())
                    .parse()
                    .unwrap(),
            );
            return Ok(r);
        }
        let mut t = fake.truncate_once.lock().unwrap();
        if let Some(i) = t.iter().position(|d| d == digest) {
            t.remove(i);
            // Promise the whole blob, send half, then break the connection.
            let half = Bytes::from(data[..data.len() / 2].to_vec());
            // The pause lets the half reach the client before the connection breaks (else the
            // client never sees a response and simply asks again).
            let frames = futures_util::stream::unfold(0, move |step| {
                let half = half.clone();
                async move {
                    match step {
                        0 => Some((Ok(hyper::body::Frame::data(half)), 1)),
                        1 => {
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            Some((Err(std::io::Error::other("connection dropped by the test")), 2))
                        }
                        _ => None,
                    }
                }
            });
            let r = Response::builder()
                .status(200)
                .header("content-length", data.len())
                .body(StreamBody::new(frames).boxed())
                .unwrap();
            return Ok(r);
        }
        return Ok(resp(200, data.clone()));
    }
    Ok(resp(404, Vec::new()))
}

async fn start(mut fake: Fake) -> Arc<Fake> {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    fake.addr = l.local_addr().unwrap().to_string();
    let fake = Arc::new(fake);
    let f = fake.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let f = f.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| serve(f.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    fake
}

/// An image of two layers built from directories; returns (manifest digest, manifest bytes, store).
fn build_image(dir: &Path, tag: &str) -> (Digest, Vec<u8>, Store) {
    let src = dir.join("src");
    let store = Store::open(&dir.join("build-store")).unwrap();
    let mut layers = Vec::new();
    for (i, content) in [("etc/one", "first layer"), ("data/big", "")].iter().enumerate() {
        let d = src.join(format!("l{i}"));
        let p = d.join(content.0);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if content.1.is_empty() {
            // Incompressible enough to make the half-way drop land inside the gzip stream.
            let mut x: u64 = 0x9e3779b97f4a7c15;
            let data: Vec<u8> = (0..300_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            std::fs::write(&p, data).unwrap();
        } else {
            std::fs::write(&p, format!("{} {tag}", content.1)).unwrap();
        }
        layers.push(layer_from_dir(&d).unwrap());
    }
    let run = RunConfig {
        cmd: Some(vec!["/bin/sh".into()]),
        ..Default::default()
    };
    let (digest, _) = store_image(&store, &layers, run, &Platform::host(), "2026-01-01T00:00:00Z").unwrap();
    let data = store.read(&digest).unwrap();
    (digest, data, store)
}

fn fake_with(image: &(Digest, Vec<u8>, Store), repo: &str, tag: &str) -> Fake {
    let mut f = Fake::default();
    let (digest, data, store) = image;
    for d in store.list().unwrap() {
        f.blobs.insert(d.to_string(), store.read(&d).unwrap());
    }
    f.manifests.insert(
        (repo.into(), tag.into()),
        (media::OCI_MANIFEST.into(), data.clone()),
    );
    f.manifests.insert(
        (repo.into(), digest.to_string()),
        (media::OCI_MANIFEST.into(), data.clone()),
    );
    f
}

fn service(dir: &Path) -> Arc<ImageService> {
    Arc::new(
        ImageService::open(
            Config {
                root: dir.join("engine"),
                insecure_registries: vec![],
                max_concurrent_downloads: 3,
                max_concurrent_uploads: 3,
                storage_driver: None,
            },
            Arc::new(Events::new()),
        )
        .unwrap(),
    )
}

async fn pull(svc: &Arc<ImageService>, r: &str) -> (Result<(), Error>, Vec<Message>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reference: Reference = r.parse().unwrap();
    let res = svc.pull(&reference, false, None, None, Progress::new(tx)).await;
    let mut msgs = Vec::new();
    while let Ok(m) = rx.try_recv() {
        msgs.push(m);
    }
    (res, msgs)
}

fn statuses(msgs: &[Message]) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.status != "Downloading" && m.status != "Extracting")
        .map(|m| {
            if m.id.is_empty() {
                m.status.clone()
            } else {
                format!("{}: {}", m.id, m.status)
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_with_token_auth_resumes_a_dropped_layer_and_is_then_up_to_date() {
    let t = tempfile::tempdir().unwrap();
    let image = build_image(t.path(), "a");
    let m: berth_image::Manifest = serde_json::from_slice(&image.1).unwrap();
    let big = m.layers[1].digest.to_string();
    let fake = fake_with(&image, "app", "v1");
    fake.truncate_once.lock().unwrap().push(big.clone());
    fake.fail_once
        .lock()
        .unwrap()
        .push(m.layers[0].digest.to_string());
    let fake = start(fake).await;
    let svc = service(t.path());
    let name = format!("{}/app:v1", fake.addr);
    let (res, msgs) = pull(&svc, &name).await;
    res.unwrap();
    let lines = statuses(&msgs);
    assert_eq!(lines[0], "v1: Pulling from app", "{lines:?}");
    assert!(
        lines.contains(&format!("{}: Pull complete", &m.layers[1].digest.short())),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!("Status: Downloaded newer image for {name}")
    );
    assert!(lines.contains(&format!("Digest: {}", image.0)));
    assert!(
        fake.ranges_seen.load(Ordering::SeqCst) >= 1,
        "the dropped layer was resumed with Range: {:?}",
        statuses(&msgs)
    );
    assert!(fake.token_requests.load(Ordering::SeqCst) >= 1);
    // The image is there, with both layers unpacked and named by tag and by digest.
    let img = svc.resolve(&name).unwrap();
    assert_eq!(img.repo_tags(), vec![name.clone()]);
    assert_eq!(img.repo_digests(), vec![format!("{}/app@{}", fake.addr, image.0)]);
    let chains = svc.chain_ids(&img).unwrap();
    let top = svc.snapshotter().layer_path(&chains[0]);
    assert_eq!(
        std::fs::read_to_string(top.join("etc/one")).unwrap(),
        "first layer a"
    );
    assert_eq!(
        std::fs::metadata(svc.snapshotter().layer_path(&chains[1]).join("data/big"))
            .unwrap()
            .len(),
        300_000
    );
    assert!(svc.size(&img).unwrap() > 300_000);
    // Again: up to date, no layer lines.
    let (res, msgs) = pull(&svc, &name).await;
    res.unwrap();
    let lines = statuses(&msgs);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[2], format!("Status: Image is up to date for {name}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_registry_stores_nothing_under_the_claimed_digest_and_the_next_pull_works() {
    let t = tempfile::tempdir().unwrap();
    let image = build_image(t.path(), "b");
    let m: berth_image::Manifest = serde_json::from_slice(&image.1).unwrap();
    let fake = fake_with(&image, "app", "v1");
    fake.lie.lock().unwrap().push(m.layers[0].digest.to_string());
    let fake = start(fake).await;
    let svc = service(t.path());
    let name = format!("{}/app:v1", fake.addr);
    let (res, _) = pull(&svc, &name).await;
    let e = res.unwrap_err().to_string();
    assert!(e.contains("digest") || e.contains("unpack"), "{e}");
    assert!(!svc.store.exists(&m.layers[0].digest));
    assert!(svc.resolve(&name).is_err());
    assert!(svc.snaps.layers().len() <= 1, "the bad layer was not published");
    fake.lie.lock().unwrap().clear();
    let (res, _) = pull(&svc, &name).await;
    res.unwrap();
    assert!(svc.store.exists(&m.layers[0].digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let image = build_image(t.path(), "e");
    let mut fake = fake_with(&image, "app", "v1");
    // The registry answers a digest request with other content.
    let (mt, mut body) = fake.manifests[&("app".to_string(), image.0.to_string())].clone();
    body.push(b' ');
    fake.manifests
        .insert(("app".into(), image.0.to_string()), (mt, body));
    let fake = start(fake).await;
    let svc = service(t.path());
    let (res, _) = pull(&svc, &format!("{}/app@{}", fake.addr, image.0)).await;
    let e = res.unwrap_err().to_string();
    assert!(e.contains("whose digest is"), "{e}");
    assert!(svc.all().unwrap().is_empty());
    assert!(!svc.store.exists(&image.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_lists_pick_the_platform_and_bad_manifests_are_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let image = build_image(t.path(), "c");
    let mut fake = fake_with(&image, "multi", "v1");
    let host = Platform::host();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [
            {"mediaType": media::OCI_MANIFEST, "digest": Digest::of(b"other").to_string(), "size": 5,
             "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": media::OCI_MANIFEST, "digest": image.0.to_string(), "size": image.1.len(),
             "platform": {"os": host.os, "architecture": host.architecture}},
        ]
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    fake.manifests.insert(
        ("multi".into(), "list".into()),
        (media::OCI_INDEX.into(), index_bytes.clone()),
    );
    let only_other = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX,
        "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": Digest::of(b"other").to_string(), "size": 5,
                       "platform": {"os": "linux", "architecture": "s390x"}}]
    });
    fake.manifests.insert(
        ("multi".into(), "s390x-only".into()),
        (media::OCI_INDEX.into(), serde_json::to_vec(&only_other).unwrap()),
    );
    fake.manifests.insert(
        ("multi".into(), "old".into()),
        (
            media::DOCKER_SCHEMA1_SIGNED.into(),
            br#"{"schemaVersion":1,"name":"multi","tag":"old","fsLayers":[]}"#.to_vec(),
        ),
    );
    let fake = start(fake).await;
    let svc = service(t.path());
    let (res, _) = pull(&svc, &format!("{}/multi:list", fake.addr)).await;
    res.unwrap();
    let img = svc.resolve(&format!("{}/multi:list", fake.addr)).unwrap();
    assert_eq!(
        img.record.target,
        Digest::of(&index_bytes),
        "named at the index digest"
    );
    assert_eq!(img.record.manifest, image.0);
    let (res, _) = pull(&svc, &format!("{}/multi:s390x-only", fake.addr)).await;
    let e = res.unwrap_err();
    assert!(e.to_string().contains("no matching manifest for"), "{e}");
    let (res, _) = pull(&svc, &format!("{}/multi:old", fake.addr)).await;
    let e = res.unwrap_err();
    assert!(e.to_string().contains("schema 1"), "{e}");
    let (res, _) = pull(&svc, &format!("{}/multi:missing", fake.addr)).await;
    let e = res.unwrap_err();
    assert_eq!(e.status(), 404);
    assert!(e.to_string().contains("not found: manifest unknown"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_remove_save_load_and_import() {
    let t = tempfile::tempdir().unwrap();
    let image = build_image(t.path(), "d");
    let fake = start(fake_with(&image, "app", "v1")).await;
    let svc = service(t.path());
    let name = format!("{}/app:v1", fake.addr);
    pull(&svc, &name).await.0.unwrap();
    let id = svc.resolve(&name).unwrap().id;
    svc.tag(&name, "other", "two").unwrap();
    assert_eq!(svc.resolve("other:two").unwrap().id, id);
    assert!(svc.tag(&name, "Bad", "x").is_err());
    // By ID with two repositories: refused without force.
    let e = svc.remove(&id.hex()[..12], false).await.unwrap_err();
    assert_eq!(e.status(), 409);
    // Untag one name: the image stays.
    let items = svc.remove("other:two", false).await.unwrap();
    assert_eq!(items, vec![DeleteItem::Untagged("other:two".into())]);
    // Save, remove the last tag (the image and its layers go), load it back.
    let mut archive = Vec::new();
    svc.save(std::slice::from_ref(&name), &mut archive).unwrap();
    let items = svc.remove(&name, false).await.unwrap();
    assert!(items.contains(&DeleteItem::Deleted(id.to_string())), "{items:?}");
    assert!(svc.all().unwrap().is_empty());
    assert!(svc.snaps.layers().is_empty(), "layers went with the image");
    assert!(svc.store.list().unwrap().is_empty(), "blobs went with the image");
    let loaded = svc.load(&mut archive.as_slice(), &Progress::discard()).unwrap();
    assert_eq!(loaded.lines, vec![format!("Loaded image: {name}")]);
    assert_eq!(svc.resolve(&name).unwrap().id, id);
    // A truncated archive is an error and names nothing.
    let e = svc
        .load(&mut &archive[..archive.len() / 3], &Progress::discard())
        .unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    // Import a root filesystem tarball.
    let root = t.path().join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hostname"), "imported\n").unwrap();
    let layer = layer_from_dir(&root).unwrap();
    let r: Reference = "imported:one".parse().unwrap();
    let new_id = svc
        .import(
            &mut layer.blob.as_slice(),
            Some(&r),
            "from a test",
            &["CMD [\"/bin/true\"]".into(), "ENV A=b".into()],
            None,
        )
        .unwrap();
    let v = svc.inspect("imported:one").unwrap();
    assert_eq!(v["Id"], new_id.to_string());
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/bin/true"]));
    assert_eq!(v["Config"]["Env"], serde_json::json!(["A=b"]));
    assert_eq!(v["RootFS"]["Layers"][0], layer.diff_id.to_string());
    let h = svc.history("imported:one").unwrap();
    assert_eq!(h[0]["Comment"], "from a test");
    assert!(svc
        .import(&mut &b"not a tarball at all"[..], None, "", &[], None)
        .is_err());
    assert!(svc
        .import(
            &mut layer.blob.as_slice(),
            None,
            "",
            &["RUN rm -rf /".into()],
            None
        )
        .is_err());
    // Filters.
    let f = ImageFilters::parse(r#"{"reference":{"imported*":true}}"#, &["reference", "dangling"]).unwrap();
    assert_eq!(svc.list(&f).unwrap().len(), 1);
    assert!(ImageFilters::parse(r#"{"bogus":{"x":true}}"#, &["reference"]).is_err());
    // until: the imported image was created just now; the pulled one at its config's date (2026-01-01).
    let all = &["until", "label", "label!", "reference"];
    let until = |v: &str| ImageFilters::parse(&format!(r#"{{"until":{{"{v}":true}}}}"#), all).unwrap();
    let names = |f: &ImageFilters| -> Vec<String> {
        svc.list(f)
            .unwrap()
            .iter()
            .map(|v| v["RepoTags"][0].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        names(&until("1h")),
        vec![name.clone()],
        "created more than an hour ago"
    );
    assert_eq!(
        names(&until(&(crate::time::now_unix() + 60).to_string())).len(),
        2
    );
    assert_eq!(names(&until("2025-06-01T00:00:00Z")).len(), 0);
    assert!(until("soon").until().is_err());
    assert!(svc.list(&until("5x")).is_err());
    // label and label!: only the imported image has none of the labels asked for.
    let labels: std::collections::BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
    let f = ImageFilters::parse(r#"{"label":{"a=1":true}}"#, all).unwrap();
    assert!(f.labels_match(&labels) && !f.labels_match(&Default::default()));
    let f = ImageFilters::parse(r#"{"label!":{"a":true}}"#, all).unwrap();
    assert!(!f.labels_match(&labels) && f.labels_match(&Default::default()));
    assert!(ImageFilters::parse("not json", &["reference"]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_filesystems_as_overlay_or_copy() {
    let t = tempfile::tempdir().unwrap();
    let image = build_image(t.path(), "f");
    let fake = start(fake_with(&image, "app", "v1")).await;
    let name = format!("{}/app:v1", fake.addr);
    for driver in ["copy", "overlayfs"] {
        let svc = Arc::new(
            ImageService::open(
                Config {
                    root: t.path().join(format!("engine-{driver}")),
                    insecure_registries: vec![],
                    max_concurrent_downloads: 3,
                    max_concurrent_uploads: 3,
                    storage_driver: Some(driver.into()),
                },
                Arc::new(Events::new()),
            )
            .unwrap(),
        );
        assert_eq!(svc.storage_driver(), driver);
        pull(&svc, &name).await.0.unwrap();
        let img = svc.resolve(&name).unwrap();
        let m = svc.prepare_rootfs("ctr1", &img).unwrap();
        if driver == "copy" {
            assert_eq!(m.fstype, "bind");
            let root = Path::new(&m.source);
            assert_eq!(
                std::fs::read_to_string(root.join("etc/one")).unwrap(),
                "first layer f"
            );
            assert_eq!(std::fs::metadata(root.join("data/big")).unwrap().len(), 300_000);
        } else {
            assert_eq!(m.fstype, "overlay");
            assert_eq!(m.options.len(), 3, "{:?}", m.options);
        }
        assert!(
            svc.prepare_rootfs("ctr1", &img).is_err(),
            "a key is prepared once"
        );
        svc.snapshotter().remove("ctr1").unwrap();
    }
    let bad = ImageService::open(
        Config {
            root: t.path().join("engine-bad"),
            insecure_registries: vec![],
            max_concurrent_downloads: 1,
            max_concurrent_uploads: 1,
            storage_driver: Some("zfs".into()),
        },
        Arc::new(Events::new()),
    );
    assert!(bad.is_err());
}

#[test]
fn globs_as_path_match() {
    use super::query::glob;
    assert!(glob("busy*", "busybox"));
    assert!(glob("*/app", "127.0.0.1:5000/app"));
    assert!(!glob("busy*", "library/busybox"));
    assert!(glob("b?sybox", "busybox"));
}

#[test]
fn decompression_is_bounded_by_the_compressed_size() {
    let t = tempfile::tempdir().unwrap();
    let svc = service(t.path());
    assert_eq!(svc.opts_for(10).max_bytes, MIN_LIMIT);
    assert_eq!(svc.opts_for(10_000_000).max_bytes, 10_000_000 * EXPANSION);
    assert_eq!(svc.opts_for(u64::MAX).max_bytes, svc.unpack_opts.max_bytes);
}

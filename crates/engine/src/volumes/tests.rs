//! The volume service on a temporary directory, with a recording mounter: no root needed.

use super::*;

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Mounter for Arc<Recorder> {
    fn mount(&self, p: &local::MountPlan, target: &Path) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push(format!("mount {} {} {}", p.device, p.fstype, target.display()));
        Ok(())
    }
    fn unmount(&self, target: &Path) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push(format!("unmount {}", target.display()));
        Ok(())
    }
}

struct Fixture {
    svc: Arc<VolumeService>,
    rec: Arc<Recorder>,
    users: Arc<Mutex<HashMap<String, Vec<String>>>>,
    events: Arc<Events>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Events::new());
    let rec = Arc::new(Recorder::default());
    let svc =
        VolumeService::open(&dir.path().join("volumes"), events.clone(), Box::new(rec.clone())).unwrap();
    let users: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let u = users.clone();
    svc.set_users(Arc::new(move |n: &str| {
        u.lock().unwrap().get(n).cloned().unwrap_or_default()
    }));
    Fixture {
        svc,
        rec,
        users,
        events,
        _dir: dir,
    }
}

fn named(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.into(),
        ..Default::default()
    }
}

fn filters(raw: &str) -> ImageFilters {
    ImageFilters::parse(raw, &["name", "driver", "label", "label!", "dangling", "all"]).unwrap()
}

#[test]
fn create_inspect_and_reload() {
    let f = fixture();
    let (past, _rx) = f.events.subscribe(Some(0));
    assert!(past.is_empty());
    let mut o = named("data");
    o.labels = Some([("team".to_string(), "a".to_string())].into());
    let m = f.svc.create(o).unwrap();
    assert!(f.svc.data_path("data").is_dir());
    let v = f.svc.inspect("data").unwrap();
    assert_eq!(v["Name"], "data");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["team"], "a");
    assert_eq!(v["Options"], Value::Null);
    assert!(v["Mountpoint"].as_str().unwrap().ends_with("/volumes/data/_data"));
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'));
    // The same name again: the existing volume, unchanged.
    assert_eq!(f.svc.create(named("data")).unwrap(), m);
    let (past, _rx) = f.events.subscribe(Some(0));
    assert_eq!(past.len(), 1);
    assert_eq!(past[0].typ, "volume");
    assert_eq!(past[0].action, "create");
    assert_eq!(past[0].actor.attributes["driver"], "local");
    // Reopened: the same volume from opts.json.
    let again = VolumeService::open(&f.svc.root, f.events.clone(), Box::new(KernelMounter)).unwrap();
    assert_eq!(again.get("data").unwrap(), m);
}

#[test]
fn bad_names_drivers_and_options_make_nothing() {
    let f = fixture();
    let e = f.svc.create(named("foo/bar")).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e
        .to_string()
        .starts_with("create foo/bar: \"foo/bar\" includes invalid characters"));
    let mut o = named("x1");
    o.driver = "nfsplugin".into();
    let e = f.svc.create(o).unwrap_err();
    assert_eq!(e.status(), 404);
    assert_eq!(
        e.to_string(),
        "error looking up volume plugin nfsplugin: plugin \"nfsplugin\" not found"
    );
    let mut o = named("x2");
    o.driver_opts = Some([("bogus".to_string(), "1".to_string())].into());
    assert_eq!(
        f.svc.create(o).unwrap_err().to_string(),
        "create x2: invalid option: \"bogus\""
    );
    assert_eq!(std::fs::read_dir(&f.svc.root).unwrap().count(), 0);
}

#[test]
fn anonymous_volumes_get_an_id_and_the_label() {
    let f = fixture();
    let m = f.svc.create(CreateOptions::default()).unwrap();
    assert_eq!(m.name.len(), 64);
    assert!(m.name.bytes().all(|c| c.is_ascii_hexdigit()));
    assert!(m.anonymous());
    assert_eq!(f.svc.inspect(&m.name).unwrap()["Labels"][ANONYMOUS_LABEL], "");
}

#[test]
fn remove_refuses_a_volume_in_use() {
    let f = fixture();
    f.svc.create(named("busy")).unwrap();
    f.users
        .lock()
        .unwrap()
        .insert("busy".into(), vec!["c1".into(), "c2".into()]);
    let e = f.svc.remove("busy", true).unwrap_err();
    assert_eq!(e.status(), 409);
    assert_eq!(e.to_string(), "remove busy: volume is in use - [c1, c2]");
    f.users.lock().unwrap().clear();
    f.svc.remove("busy", false).unwrap();
    assert!(!f.svc.root.join("busy").exists());
    let e = f.svc.remove("busy", false).unwrap_err();
    assert_eq!(
        (e.status(), e.to_string()),
        (404, "get busy: no such volume".to_string())
    );
    f.svc.remove("busy", true).unwrap();
    let (past, _rx) = f.events.subscribe(Some(0));
    assert_eq!(past.last().unwrap().action, "destroy");
}

#[test]
fn list_filters() {
    let f = fixture();
    let mut o = named("web-data");
    o.labels = Some([("env".to_string(), "prod".to_string())].into());
    f.svc.create(o).unwrap();
    f.svc.create(named("db-data")).unwrap();
    f.users.lock().unwrap().insert("db-data".into(), vec!["c".into()]);
    let names = |raw: &str| -> Vec<String> {
        f.svc.list(&filters(raw)).unwrap()["Volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["Name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(""), ["db-data", "web-data"]);
    assert_eq!(names(r#"{"name":{"web":true}}"#), ["web-data"]);
    assert_eq!(names(r#"{"label":{"env=prod":true}}"#), ["web-data"]);
    assert_eq!(names(r#"{"label!":{"env":true}}"#), ["db-data"]);
    assert_eq!(names(r#"{"dangling":{"true":true}}"#), ["web-data"]);
    assert_eq!(names(r#"{"dangling":{"false":true}}"#), ["db-data"]);
    assert_eq!(names(r#"{"driver":{"other":true}}"#), Vec::<String>::new());
    assert_eq!(f.svc.list(&filters("")).unwrap()["Warnings"], Value::Null);
}

#[test]
fn prune_takes_unused_anonymous_volumes_unless_all() {
    let f = fixture();
    let anon = f.svc.create(CreateOptions::default()).unwrap().name;
    let used = f.svc.create(CreateOptions::default()).unwrap().name;
    f.svc.create(named("keep")).unwrap();
    std::fs::write(f.svc.data_path(&anon).join("f"), b"12345").unwrap();
    f.users.lock().unwrap().insert(used.clone(), vec!["c".into()]);
    let r = f.svc.prune(&filters("")).unwrap();
    assert_eq!(r["VolumesDeleted"], json!([anon]));
    assert_eq!(r["SpaceReclaimed"], 5);
    let r = f.svc.prune(&filters("")).unwrap();
    assert_eq!(r["VolumesDeleted"], Value::Null);
    assert_eq!(r["SpaceReclaimed"], 0);
    let r = f.svc.prune(&filters(r#"{"all":{"true":true}}"#)).unwrap();
    assert_eq!(r["VolumesDeleted"], json!(["keep"]));
    assert!(f.svc.exists(&used));
    assert!(f.svc.prune(&filters(r#"{"all":{"maybe":true}}"#)).is_err());
}

#[test]
fn volumes_with_options_are_mounted_once_and_unmounted_by_the_last_user() {
    let f = fixture();
    let mut o = named("scratch");
    o.driver_opts = Some(
        [("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    f.svc.create(o).unwrap();
    let p = f.svc.mount("scratch", "c1").unwrap();
    f.svc.mount("scratch", "c2").unwrap();
    f.svc.mount("scratch", "c2").unwrap();
    f.svc.unmount("scratch", "c1");
    assert_eq!(
        *f.rec.0.lock().unwrap(),
        [format!("mount tmpfs tmpfs {}", p.display())]
    );
    f.svc.unmount("scratch", "c2");
    assert_eq!(f.rec.0.lock().unwrap().len(), 2);
    assert_eq!(f.rec.0.lock().unwrap()[1], format!("unmount {}", p.display()));
    // A plain volume is its directory: nothing mounted.
    f.svc.create(named("plain")).unwrap();
    f.svc.mount("plain", "c1").unwrap();
    f.svc.unmount("plain", "c1");
    assert_eq!(f.rec.0.lock().unwrap().len(), 2);
    let usage = f.svc.usage();
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0]["UsageData"]["RefCount"], 0);
}

#[test]
fn a_restart_holds_running_containers_volumes_again_and_unmounts_the_rest() {
    let f = fixture();
    for name in ["held", "orphan"] {
        let mut o = named(name);
        o.driver_opts = Some(
            [("type", "tmpfs"), ("device", "tmpfs")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        f.svc.create(o).unwrap();
    }
    f.svc.create(named("plain")).unwrap();
    // As a new berthd finds them: c1 runs with "held" (mounted by the berthd before), nothing
    // holds "orphan".
    f.svc
        .restore(&[("held".into(), "c1".into()), ("plain".into(), "c1".into())]);
    assert_eq!(
        *f.rec.0.lock().unwrap(),
        [format!("unmount {}", f.svc.data_path("orphan").display())]
    );
    // A second user does not mount it again; the last one's end unmounts it.
    f.svc.mount("held", "c2").unwrap();
    f.svc.unmount("held", "c1");
    f.svc.unmount("held", "c2");
    assert_eq!(
        f.rec.0.lock().unwrap()[1..],
        [format!("unmount {}", f.svc.data_path("held").display())]
    );
}

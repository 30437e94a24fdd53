//! Mount specs parsed and planned with dockerd's messages, no host needed.

use super::*;

fn lookups<'a>(
    exists: &'a dyn Fn(&str) -> bool,
    from: &'a dyn Fn(&str) -> Result<Vec<MountPoint>, Error>,
) -> Lookups<'a> {
    Lookups {
        path_exists: exists,
        container_mounts: from,
        new_name: &|| "a".repeat(64),
    }
}

fn none(n: &str) -> Result<Vec<MountPoint>, Error> {
    Err(Error::NotFound(format!("No such container: {n}")))
}

fn bind(raw: &str) -> Result<MountPoint, Error> {
    parse_bind(raw, &lookups(&|_| true, &none))
}

fn mount(v: Value) -> Result<MountPoint, Error> {
    parse_mount(&v, &lookups(&|p| p == "/exists", &none))
}

#[test]
fn binds_as_dockerd_parses_them() {
    let m = bind("/host/dir/:/x:ro").unwrap();
    assert_eq!(
        (m.typ.as_str(), m.source.as_str(), m.destination.as_str()),
        ("bind", "/host/dir", "/x")
    );
    assert!(!m.rw);
    assert_eq!(m.mode, "ro");
    assert_eq!(m.propagation, "rprivate");
    assert!(m.create_source);
    assert_eq!(
        m.shown(),
        json!({"Type":"bind","Source":"/host/dir","Destination":"/x","Mode":"ro","RW":false,"Propagation":"rprivate"})
    );
    let m = bind("/h:/y:rshared,z").unwrap();
    assert_eq!(m.propagation, "rshared");
    assert!(m.rw);
    let m = bind("data:/var/lib/data").unwrap();
    assert_eq!(
        (m.typ.as_str(), m.name.as_str(), m.mode.as_str()),
        ("volume", "data", "z")
    );
    assert!(m.copy_data && !m.anonymous);
    assert!(!bind("data:/d:nocopy").unwrap().copy_data);
    let m = bind("/only/target").unwrap();
    assert!(m.anonymous && m.name.len() == 64 && m.typ == "volume");
}

#[test]
fn bad_binds_have_dockerds_messages() {
    let msg = |raw: &str| bind(raw).unwrap_err().to_string();
    assert_eq!(msg(":/x"), "invalid volume specification: ':/x'");
    assert_eq!(msg("/x:rw"), "invalid volume specification: '/x:rw'");
    assert_eq!(msg("a:b:c:d"), "invalid volume specification: 'a:b:c:d'");
    assert_eq!(msg("/h:/x:bogus"), "invalid mode: bogus");
    assert_eq!(msg("/h:/x:ro,rw"), "invalid mode: ro,rw");
    assert_eq!(
        msg("/h:rel"),
        "invalid volume specification: '/h:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
    );
    assert_eq!(
        msg("/h:/"),
        "invalid volume specification: '/h:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
    );
    assert!(msg("foo/bar:/x").starts_with("create foo/bar: \"foo/bar\" includes invalid characters"));
    assert!(msg("../x:/x").starts_with("create ../x:"));
}

#[test]
fn api_mounts_validated() {
    let e = mount(json!({"Type":"bind","Source":"/x","Target":"/t"})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid mount config for type \"bind\": bind source path does not exist: /x"
    );
    let m = mount(json!({"Type":"bind","Source":"/x","Target":"/t","BindOptions":{"CreateMountpoint":true}}))
        .unwrap();
    assert!(m.create_source);
    let m = mount(json!({"Type":"bind","Source":"/exists","Target":"/t","ReadOnly":true,"BindOptions":{"Propagation":"rslave","NonRecursive":true}})).unwrap();
    assert_eq!(m.to_oci("/exists").options.unwrap(), ["bind", "ro", "rslave"]);
    let msg = |v: Value| mount(v).unwrap_err().to_string();
    assert_eq!(
        msg(json!({"Type":"bind","Target":"/t"})),
        "invalid mount config for type \"bind\": field Source must not be empty"
    );
    assert_eq!(
        msg(json!({"Type":"bind","Source":"/exists"})),
        "invalid mount config for type \"bind\": field Target must not be empty"
    );
    assert_eq!(
        msg(json!({"Type":"bind","Source":"/exists","Target":"/t","BindOptions":{"Propagation":"sideways"}})),
        "invalid mount config for type \"bind\": invalid propagation mode: sideways"
    );
    assert_eq!(
        msg(json!({"Type":"volume","Target":"/t","ReadOnly":true})),
        "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"
    );
    assert_eq!(
        msg(json!({"Type":"volume","Source":"vol","Target":"/t","BindOptions":{}})),
        "invalid mount config for type \"volume\": field BindOptions must not be specified"
    );
    assert_eq!(
        msg(json!({"Type":"tmpfs","Source":"x","Target":"/t"})),
        "invalid mount config for type \"tmpfs\": field Source must not be specified"
    );
    assert_eq!(
        msg(json!({"Type":"weird","Target":"/t"})),
        "invalid mount config for type \"weird\": mount type unknown"
    );
    assert_eq!(
        msg(
            json!({"Type":"volume","Source":"vol","Target":"/t","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"x":"1"}}}})
        ),
        "invalid option: \"x\""
    );
    let m = mount(json!({"Type":"volume","Source":"vol","Target":"/t","VolumeOptions":{"NoCopy":true,"Labels":{"a":"b"}}})).unwrap();
    assert!(!m.copy_data);
    assert_eq!(m.volume_labels["a"], "b");
    let m = mount(json!({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":67108864,"Mode":1023,"Options":[["exec"]]}})).unwrap();
    assert_eq!(m.tmpfs_data, "mode=1777,size=64m,exec");
    assert_eq!(
        m.to_oci("").options.unwrap(),
        [
            "noexec",
            "nosuid",
            "nodev",
            "rprivate",
            "mode=1777",
            "size=64m",
            "exec"
        ]
    );
}

#[test]
fn volumes_from_modes() {
    assert_eq!(parse_volumes_from("web").unwrap(), ("web".into(), true));
    assert_eq!(parse_volumes_from("web:ro").unwrap(), ("web".into(), false));
    assert_eq!(
        parse_volumes_from("web:rshared").unwrap_err().to_string(),
        "invalid mode: rshared"
    );
    assert_eq!(
        parse_volumes_from("web:nocopy").unwrap_err().to_string(),
        "invalid mode: nocopy"
    );
    assert_eq!(
        parse_volumes_from("").unwrap_err().to_string(),
        "volumes-from specification cannot be an empty string"
    );
}

#[test]
fn plans_in_dockerds_order() {
    let from = |n: &str| -> Result<Vec<MountPoint>, Error> {
        if n != "data" {
            return none(n);
        }
        Ok(vec![
            MountPoint {
                typ: "volume".into(),
                name: "shared".into(),
                destination: "/shared".into(),
                rw: true,
                copy_data: true,
                ..Default::default()
            },
            MountPoint {
                typ: "volume".into(),
                name: "over".into(),
                destination: "/over".into(),
                rw: true,
                ..Default::default()
            },
        ])
    };
    let lk = lookups(&|_| true, &from);
    let req = Request {
        binds: vec!["/h:/over".into()],
        mounts: vec![json!({"Type":"tmpfs","Target":"/t"})],
        volumes_from: vec!["data:ro".into()],
        volumes: vec!["/img/vol".into(), "/t".into()],
    };
    let p = plan(&req, &lk).unwrap();
    let dests: Vec<&str> = p.iter().map(|m| m.destination.as_str()).collect();
    assert_eq!(dests, ["/shared", "/over", "/t", "/img/vol"]);
    assert!(!p[0].rw && !p[0].copy_data);
    assert_eq!(p[1].typ, "bind");
    assert!(p[3].anonymous && p[3].copy_data && p[3].mode.is_empty());
    let dup = Request {
        binds: vec!["/a:/x".into(), "vol:/x/".into()],
        ..Default::default()
    };
    assert_eq!(
        plan(&dup, &lk).unwrap_err().to_string(),
        "Duplicate mount point: /x"
    );
    let dup = Request {
        binds: vec!["/a:/x".into()],
        mounts: vec![json!({"Type":"tmpfs","Target":"/x"})],
        ..Default::default()
    };
    assert_eq!(
        plan(&dup, &lk).unwrap_err().to_string(),
        "Duplicate mount point: /x"
    );
    let missing = Request {
        volumes_from: vec!["nope".into()],
        ..Default::default()
    };
    assert_eq!(plan(&missing, &lk).unwrap_err().status(), 404);
}

#[test]
fn merged_into_the_spec_by_depth() {
    let m = |d: &str, t: &str| oci::Mount {
        destination: d.into(),
        typ: Some(t.into()),
        ..Default::default()
    };
    let mut spec = vec![
        m("/proc", "proc"),
        m("/dev", "tmpfs"),
        m("/dev/shm", "tmpfs"),
        m("/tmp", "tmpfs"),
    ];
    let files = vec![m("/etc/hosts", "bind"), m("/etc/hostname", "bind")];
    let user = vec![
        m("/a/b/c", "bind"),
        m("/etc", "bind"),
        m("/tmp", "bind"),
        m("/etc/hostname", "bind"),
    ];
    merge(&mut spec, files, user);
    let got: Vec<(&str, &str)> = spec
        .iter()
        .map(|x| (x.destination.as_str(), x.typ.as_deref().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("/proc", "proc"),
            ("/dev", "tmpfs"),
            ("/dev/shm", "tmpfs"),
            ("/etc", "bind"),
            ("/tmp", "bind"),
            ("/etc/hosts", "bind"),
            ("/etc/hostname", "bind"),
            ("/a/b/c", "bind")
        ]
    );
}

//! Volumes and bind mounts through berthd, end to end with the unmodified docker CLI: a named
//! volume's data outliving its container and seen by the next, copy-up of an image's `VOLUME`
//! directory (owner and mode kept) into a new anonymous volume removed by `rm -v`, read-only
//! binds, `--mount` errors, `--volumes-from`, a volume in use refused by `volume rm`, and a tmpfs
//! volume mounted for its container and unmounted after it.

use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_e2e::daemon::*;

const IMAGE: &str = "e2e-vol-busybox";

/// A busybox root with `/seed/file` (uid 1000, mode 0640) under a `VOLUME`.
fn image_tar(dir: &Path) -> PathBuf {
    let root = dir.join("volroot");
    busybox_root(&root);
    std::fs::create_dir_all(root.join("seed/sub")).unwrap();
    std::fs::write(root.join("seed/file"), "seeded\n").unwrap();
    std::fs::write(root.join("seed/sub/deep"), "deep\n").unwrap();
    chown(root.join("seed/file"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(root.join("seed/file"), std::fs::Permissions::from_mode(0o640)).unwrap();
    tar_of(&root, &dir.join("vol.tar"))
}

/// The daemon comes last so that it is dropped first, while its directory (whose records say
/// which bridges to delete) still exists.
fn setup() -> Option<(Tools, tempfile::TempDir, Daemon)> {
    let t = tools()?;
    for bin in ["berth-shim", "berth-runtime"] {
        if !t.berthd.with_file_name(bin).is_file() {
            eprintln!(
                "skipped: {bin} not found beside berthd (cargo build -p berth-shim -p berth-runtime-cli)"
            );
            return None;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&t, dir.path());
    let tar = image_tar(dir.path());
    ok(
        &t,
        &d,
        &[
            "import",
            "--change",
            "CMD [\"sh\"]",
            "--change",
            "VOLUME [\"/seed\"]",
            tar.to_str().unwrap(),
            IMAGE,
        ],
    );
    Some((t, dir, d))
}

/// Removes every container (force) and then every volume of the daemon, so no shim or mount
/// outlives a test, even a failed one. (It holds no borrow of the daemon, which a test may restart.)
struct Cleanup(berth_e2e::daemon::Cleanup);

impl Cleanup {
    fn new(t: &Tools, d: &Daemon) -> Cleanup {
        Cleanup(berth_e2e::daemon::Cleanup::new(t, d))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in self.0.docker(&["ps", "-aq"]).split_whitespace() {
            self.0.docker(&["rm", "-f", id]);
        }
        for v in self.0.docker(&["volume", "ls", "-q"]).split_whitespace() {
            self.0.docker(&["volume", "rm", "-f", v]);
        }
    }
}

fn mounted(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

#[test]
fn named_volume_outlives_its_container_and_is_refused_while_in_use() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    assert_eq!(
        ok(&t, &d, &["volume", "create", "--label", "k=v", "vdata"]).trim(),
        "vdata"
    );
    ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "vdata:/data",
            IMAGE,
            "sh",
            "-c",
            "echo kept > /data/f",
        ],
    );
    let out = ok(
        &t,
        &d,
        &["run", "--rm", "-v", "vdata:/data", IMAGE, "cat", "/data/f"],
    );
    assert_eq!(out, "kept\n");
    let mp = ok(&t, &d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "vdata"]);
    assert_eq!(
        std::fs::read_to_string(Path::new(mp.trim()).join("f")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        ok(
            &t,
            &d,
            &[
                "volume",
                "inspect",
                "-f",
                "{{.Labels.k}} {{.Driver}} {{.Scope}}",
                "vdata"
            ]
        )
        .trim(),
        "v local local"
    );
    assert!(ok(&t, &d, &["volume", "ls", "-q"]).lines().any(|l| l == "vdata"));
    assert_eq!(
        ok(&t, &d, &["volume", "ls", "-q", "--filter", "label=k=v"]).trim(),
        "vdata"
    );
    // In use by a container (even a stopped one): refused with dockerd's message.
    let id = ok(&t, &d, &["create", "-v", "vdata:/data", IMAGE])
        .trim()
        .to_string();
    let err = fails(&t, &d, &["volume", "rm", "vdata"]);
    assert!(
        err.contains(&format!("remove vdata: volume is in use - [{id}]")),
        "{err}"
    );
    // ps --filter volume: by the volume's name or the mount's destination.
    for f in ["volume=vdata", "volume=/data"] {
        assert_eq!(
            ok(&t, &d, &["ps", "-aq", "--no-trunc", "--filter", f]).trim(),
            id,
            "{f}"
        );
    }
    assert_eq!(ok(&t, &d, &["ps", "-aq", "--filter", "volume=other"]), "");
    let mounts = ok(
        &t,
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
            &id,
        ],
    );
    // The image's VOLUME /seed comes with an anonymous volume next to the named one.
    assert!(mounts.starts_with("volume vdata /data truevolume "), "{mounts}");
    assert!(mounts.trim().ends_with(" /seed true"), "{mounts}");
    ok(&t, &d, &["rm", "-v", &id]);
    ok(&t, &d, &["volume", "rm", "vdata"]);
    assert!(!Path::new(mp.trim()).exists());
    let err = fails(&t, &d, &["volume", "inspect", "vdata"]);
    assert!(err.contains("no such volume"), "{err}");
    // A bad name: dockerd's message, nothing made.
    let err = fails(&t, &d, &["run", "--rm", "-v", "bad/name:/x", IMAGE, "true"]);
    assert!(
        err.contains("includes invalid characters for a local volume name"),
        "{err}"
    );
}

#[test]
fn copy_up_into_an_anonymous_volume_removed_by_rm_v() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let id = ok(
        &t,
        &d,
        &[
            "create",
            IMAGE,
            "sh",
            "-c",
            "stat -c '%u:%g %a' /seed/file; cat /seed/file /seed/sub/deep",
        ],
    )
    .trim()
    .to_string();
    let name = ok(
        &t,
        &d,
        &["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", &id],
    )
    .trim()
    .to_string();
    assert_eq!(name.len(), 64, "{name}");
    let anon = ok(
        &t,
        &d,
        &[
            "volume",
            "inspect",
            "-f",
            "{{index .Labels \"com.docker.volume.anonymous\"}}|",
            &name,
        ],
    );
    assert_eq!(anon.trim(), "|");
    let out = ok(&t, &d, &["start", "-a", &id]);
    assert_eq!(out, "1000:1000 640\nseeded\ndeep\n");
    // A named volume with nocopy stays empty.
    let out = ok(
        &t,
        &d,
        &["run", "--rm", "-v", "vempty:/seed:nocopy", IMAGE, "ls", "/seed"],
    );
    assert_eq!(out, "");
    // rm -v: the anonymous volume goes, the named one stays.
    ok(&t, &d, &["rm", "-v", &id]);
    assert!(fails(&t, &d, &["volume", "inspect", &name]).contains("no such volume"));
    ok(&t, &d, &["volume", "inspect", "vempty"]);
    // --rm removes the anonymous volumes of its container too.
    ok(&t, &d, &["run", "--rm", IMAGE, "true"]);
    let left = ok(&t, &d, &["volume", "ls", "-q"]);
    assert_eq!(left.trim(), "vempty");
}

#[test]
fn binds_read_only_created_and_refused() {
    let Some((t, dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let host = dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "from host\n").unwrap();
    let spec = format!("{}:/x:ro", host.display());
    let o = run_cli(
        &t.docker,
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &spec,
            IMAGE,
            "sh",
            "-c",
            "cat /x/f; touch /x/g",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from host\n");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("Read-only file system"));
    assert!(!host.join("g").exists());
    // Read-write: the container's write is seen on the host.
    let spec = format!("{}:/x", host.display());
    ok(
        &t,
        &d,
        &["run", "--rm", "-v", &spec, IMAGE, "sh", "-c", "echo back > /x/g"],
    );
    assert_eq!(std::fs::read_to_string(host.join("g")).unwrap(), "back\n");
    // -v creates a missing host directory; --mount type=bind refuses it.
    let fresh = dir.path().join("fresh/dir");
    ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{}:/y", fresh.display()),
            IMAGE,
            "true",
        ],
    );
    assert!(fresh.is_dir());
    let missing = dir.path().join("missing");
    let err = fails(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,source={},target=/y", missing.display()),
            IMAGE,
            "true",
        ],
    );
    assert!(
        err.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            missing.display()
        )),
        "{err}"
    );
    assert!(!missing.exists());
    let err = fails(
        &t,
        &d,
        &["run", "--rm", "-v", "/a:/x", "-v", "/b:/x", IMAGE, "true"],
    );
    assert!(err.contains("Duplicate mount point: /x"), "{err}");
    // --mount type=tmpfs.
    let out = ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,target=/scratch,tmpfs-size=1m",
            IMAGE,
            "sh",
            "-c",
            "grep ' /scratch ' /proc/mounts",
        ],
    );
    assert!(out.starts_with("tmpfs /scratch tmpfs"), "{out}");
}

#[test]
fn volumes_from_and_a_tmpfs_volume() {
    let Some((t, _dir, mut d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    ok(
        &t,
        &d,
        &["create", "--name", "src", "-v", "vshared:/shared", IMAGE],
    );
    ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "--volumes-from",
            "src",
            IMAGE,
            "sh",
            "-c",
            "echo via > /shared/y",
        ],
    );
    let out = ok(&t, &d, &["run", "--rm", "-v", "vshared:/v", IMAGE, "cat", "/v/y"]);
    assert_eq!(out, "via\n");
    let o = run_cli(
        &t.docker,
        &d,
        &[
            "run",
            "--rm",
            "--volumes-from",
            "src:ro",
            IMAGE,
            "touch",
            "/shared/z",
        ],
    );
    assert!(!o.status.success());
    // (dockerd's 404 for it makes the docker CLI try a pull, so only the failure is checked here;
    // the message is checked through the API in berthd's unit tests.)
    fails(&t, &d, &["run", "--rm", "--volumes-from", "ghost", IMAGE, "true"]);
    // A tmpfs volume: mounted while its container runs, unmounted after.
    ok(
        &t,
        &d,
        &[
            "volume",
            "create",
            "--opt",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "--opt",
            "o=size=1m",
            "vtmp",
        ],
    );
    let out = ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "vtmp:/t",
            IMAGE,
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts",
        ],
    );
    assert!(out.starts_with("tmpfs /t tmpfs"), "{out}");
    assert!(out.contains("size=1024k"), "{out}");
    let mp = ok(&t, &d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "vtmp"]);
    assert!(!mounted(mp.trim()), "{} still mounted", mp.trim());
    // berthd restarted while a container holds it: a second container shares the same tmpfs (not
    // a new one mounted over it), and the end of the last one unmounts it.
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "t1",
            "-v",
            "vtmp:/t",
            IMAGE,
            "sh",
            "-c",
            "echo kept > /t/f; exec sleep 300",
        ],
    );
    wait_for("the file", Duration::from_secs(10), || {
        std::path::Path::new(mp.trim()).join("f").exists()
    });
    d.restart();
    ok(
        &t,
        &d,
        &[
            "run", "-d", "--name", "t2", "-v", "vtmp:/t", IMAGE, "sleep", "300",
        ],
    );
    assert_eq!(ok(&t, &d, &["exec", "t2", "cat", "/t/f"]), "kept\n");
    let stacked = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(mp.trim()))
        .count();
    assert_eq!(stacked, 1, "one mount at {}", mp.trim());
    ok(&t, &d, &["rm", "-f", "t1", "t2"]);
    wait_for("the unmount", Duration::from_secs(10), || !mounted(mp.trim()));
    let err = fails(&t, &d, &["volume", "create", "--opt", "bogus=1", "vbad"]);
    assert!(
        err.contains("invalid option: \\\"bogus\\\"") || err.contains("invalid option: \"bogus\""),
        "{err}"
    );
    // prune: unused anonymous volumes only; --all takes the named ones too.
    ok(&t, &d, &["rm", "src"]);
    let out = ok(&t, &d, &["volume", "prune", "-f", "--all"]);
    assert!(out.contains("vshared") && out.contains("vtmp"), "{out}");
}

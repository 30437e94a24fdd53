//! Layer application on tarballs built here, hostile ones included.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, mode);
    b.append_data(&mut h, path, data).unwrap();
}

fn raw_name(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    name: &str,
    link: Option<&str>,
    data: &[u8],
) {
    // Bypass the builder's own path checks: hostile archives do not use friendly tools.
    let mut h = header(kind, data.len() as u64, 0o644);
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn apply_bytes(data: &[u8], dest: &Path, opts: &Options) -> Result<Applied, UnpackError> {
    apply(data, Compression::None, dest, &as_caller(opts))
}

/// Owners are only kept when the tests run as root (`cargo test` needs no root).
fn as_caller(opts: &Options) -> Options {
    Options {
        preserve_owner: nix::unistd::geteuid().is_root(),
        ..opts.clone()
    }
}

#[test]
fn files_dirs_links_modes_and_the_diff_id() {
    let t = tempfile::tempdir().unwrap();
    let data = tar_of(|b| {
        let mut d = header(tar::EntryType::Directory, 0, 0o755);
        b.append_data(&mut d, "etc/", &[][..]).unwrap();
        file(b, "etc/passwd", b"root:x:0:0::/:/bin/sh\n", 0o644);
        file(b, "bin/su", b"#!", 0o4755);
        let mut l = header(tar::EntryType::Symlink, 0, 0o777);
        b.append_link(&mut l, "etc/link", "/etc/passwd").unwrap();
        let mut h = header(tar::EntryType::Link, 0, 0o644);
        b.append_link(&mut h, "etc/hard", "etc/passwd").unwrap();
    });
    let got = apply_bytes(&data, t.path(), &Options::default()).unwrap();
    assert_eq!(got.diff_id, Digest::of(&data));
    assert_eq!(got.size, data.len() as u64);
    assert_eq!(
        fs::read_to_string(t.path().join("etc/passwd")).unwrap(),
        "root:x:0:0::/:/bin/sh\n"
    );
    assert_eq!(
        fs::metadata(t.path().join("bin/su"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755,
        "setuid kept"
    );
    assert_eq!(
        fs::read_link(t.path().join("etc/link")).unwrap(),
        PathBuf::from("/etc/passwd")
    );
    assert_eq!(
        fs::metadata(t.path().join("etc/hard")).unwrap().ino(),
        fs::metadata(t.path().join("etc/passwd")).unwrap().ino()
    );
}

#[test]
fn gzip_and_zstd_layers() {
    let t = tempfile::tempdir().unwrap();
    let data = tar_of(|b| file(b, "a", b"hello", 0o644));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &data).unwrap();
    let blob = gz.finish().unwrap();
    let got = apply(
        &blob[..],
        Compression::Gzip,
        t.path(),
        &as_caller(&Options::default()),
    )
    .unwrap();
    assert_eq!(
        got.diff_id,
        Digest::of(&data),
        "the diff ID is of the uncompressed stream"
    );
    let z = zstd::stream::encode_all(&data[..], 3).unwrap();
    let zt = tempfile::tempdir().unwrap();
    let got = apply(
        &z[..],
        Compression::Zstd,
        zt.path(),
        &as_caller(&Options::default()),
    )
    .unwrap();
    assert_eq!(got.diff_id, Digest::of(&data));
    assert_eq!(fs::read_to_string(zt.path().join("a")).unwrap(), "hello");
    // Garbage is an error, not a panic.
    assert!(apply(
        &b"not zstd at all"[..],
        Compression::Zstd,
        zt.path(),
        &Options::default()
    )
    .is_err());
}

#[test]
fn whiteouts_in_both_modes() {
    let t = tempfile::tempdir().unwrap();
    let lower = tar_of(|b| {
        file(b, "dir/a", b"1", 0o644);
        file(b, "dir/b", b"2", 0o644);
        file(b, "gone", b"3", 0o644);
    });
    let upper = tar_of(|b| {
        file(b, ".wh.gone", b"", 0o644);
        file(b, "dir/.wh..wh..opq", b"", 0o644);
        file(b, "dir/c", b"4", 0o644);
    });
    let flat = Options {
        mode: Mode2::Flatten,
        ..Options::default()
    };
    apply_bytes(&lower, t.path(), &flat).unwrap();
    apply_bytes(&upper, t.path(), &flat).unwrap();
    assert!(!t.path().join("gone").exists());
    assert!(!t.path().join("dir/a").exists() && !t.path().join("dir/b").exists());
    assert_eq!(fs::read_to_string(t.path().join("dir/c")).unwrap(), "4");
    // Overlay mode: the whiteout is a 0/0 character device (needs root, as mknod does).
    if nix::unistd::geteuid().is_root() {
        let o = tempfile::tempdir().unwrap();
        apply_bytes(&upper, o.path(), &Options::default()).unwrap();
        let m = fs::symlink_metadata(o.path().join("gone")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()));
        assert_eq!(m.rdev(), 0);
    }
}

#[test]
fn hostile_layers_write_nothing_outside() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("victim");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot",
            tar_of(|b| raw_name(b, tar::EntryType::Regular, "../victim", None, b"x")),
        ),
        (
            "deep dot-dot",
            tar_of(|b| raw_name(b, tar::EntryType::Regular, "a/../../victim", None, b"x")),
        ),
        (
            "write through a symlink",
            tar_of(|b| {
                let mut l = header(tar::EntryType::Symlink, 0, 0o777);
                b.append_link(&mut l, "evil", outside.path()).unwrap();
                raw_name(b, tar::EntryType::Regular, "evil/victim", None, b"x");
            }),
        ),
        (
            "hard link out",
            tar_of(|b| raw_name(b, tar::EntryType::Link, "h", Some("../victim"), b"")),
        ),
        (
            "device",
            tar_of(|b| raw_name(b, tar::EntryType::Char, "dev/mem", None, b"")),
        ),
        (
            "whiteout of ..",
            tar_of(|b| raw_name(b, tar::EntryType::Regular, "a/.wh...", None, b"")),
        ),
    ];
    for (name, data) in cases {
        let layer = outside.path().join(format!("layer-{}", name.replace(' ', "-")));
        fs::create_dir(&layer).unwrap();
        let r = apply_bytes(&data, &layer, &Options::default());
        assert!(r.is_err(), "{name}: should be refused");
        assert!(!target.exists(), "{name}: wrote outside the layer");
        assert!(!outside.path().join("victim").exists());
    }
    // An absolute name lands inside the layer.
    let layer = outside.path().join("abs");
    fs::create_dir(&layer).unwrap();
    apply_bytes(
        &tar_of(|b| raw_name(b, tar::EntryType::Regular, "/victim", None, b"x")),
        &layer,
        &Options::default(),
    )
    .unwrap();
    assert!(layer.join("victim").exists() && !target.exists());
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    let t = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 4 << 20];
    let data = tar_of(|b| file(b, "big", &zeros, 0o644));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &data).unwrap();
    let blob = gz.finish().unwrap();
    assert!(blob.len() < 64 << 10, "the bomb is small compressed");
    let opts = Options {
        max_bytes: 1 << 20,
        ..Options::default()
    };
    let e = apply(&blob[..], Compression::Gzip, t.path(), &as_caller(&opts)).unwrap_err();
    assert!(matches!(e, UnpackError::TooLarge(_)), "{e}");
}

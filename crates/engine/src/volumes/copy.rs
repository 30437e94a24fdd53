//! Copy-up (an image's directory copied into a new, empty volume, with owners and modes) and the
//! size of a volume's data. Neither follows a symlink: links are copied as links and never
//! descended into, so an image cannot make berthd read or write outside the two trees.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::{lchown, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Whether `dir` has no entries (a missing directory counts as empty).
pub fn is_empty(dir: &Path) -> io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => Ok(rd.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Copies the tree under `src` into the existing directory `dst`, then gives `dst` the owner and
/// mode of `src` (as dockerd does). `src` must be a real directory, not a symlink to one.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    if !meta.is_dir() {
        return Ok(());
    }
    copy_entries(src, dst)?;
    lchown(dst, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}

fn copy_entries(src: &Path, dst: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let m = std::fs::symlink_metadata(&from)?;
        let ft = m.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_entries(&from, &to)?;
        } else if ft.is_file() {
            // `from` was seen as a regular file; opened without following a link swapped in since.
            let mut r = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&from)?;
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&to)?;
            io::copy(&mut r, &mut w)?;
        } else {
            // Devices, fifos and sockets are not data: dockerd's copy skips nothing, but a volume
            // is no place for a device node made by an image, so berth leaves them out.
            continue;
        }
        lchown(&to, Some(m.uid()), Some(m.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// The bytes of the regular files under `dir` (each inode once), without following links.
pub fn size(dir: &Path) -> u64 {
    fn walk(d: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(rd) = std::fs::read_dir(d) else {
            return 0;
        };
        let mut total = 0;
        for e in rd.flatten() {
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if m.is_dir() {
                total += walk(&e.path(), seen);
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
        total
    }
    walk(dir, &mut HashSet::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_links_and_modes() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let dst = t.path().join("dst");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("a"), b"hello").unwrap();
        std::fs::write(src.join("sub/b"), b"xy").unwrap();
        std::fs::set_permissions(src.join("a"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o711)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        assert!(is_empty(&dst).unwrap());
        copy_tree(&src, &dst).unwrap();
        assert_eq!(std::fs::read(dst.join("a")).unwrap(), b"hello");
        assert_eq!(std::fs::read(dst.join("sub/b")).unwrap(), b"xy");
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&dst.join("a")), 0o640);
        assert_eq!(mode(&dst), 0o711);
        // The link is a link, pointing where it pointed: not the host's file copied in.
        assert!(std::fs::symlink_metadata(dst.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(!is_empty(&dst).unwrap());
        assert_eq!(size(&dst), 7);
    }

    #[test]
    fn a_linked_source_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        copy_tree(&t.path().join("link"), &dst).unwrap();
        assert!(is_empty(&dst).unwrap());
    }
}

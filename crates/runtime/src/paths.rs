//! Paths inside a container's root filesystem, resolved without ever leaving it.
//!
//! Two layers: [`resolve_in_root`] walks a container path component by component (following symlinks
//! as if the rootfs were `/`) and refuses a link whose `..` climbs above the root, so a hostile image
//! gets a clear error; [`open_in_root`] then opens the result with `openat2(RESOLVE_IN_ROOT)`, so even a
//! rootfs changed in between cannot make the kernel leave the root.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_sys::fs::{openat2_in_root, ResolveFlags};

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{path}: the symlink {link} escapes the root filesystem")]
    Escape { path: String, link: String },
    #[error("{path}: too many levels of symbolic links")]
    Loop { path: String },
    #[error("{path}: inspect {component}")]
    Inspect {
        path: String,
        component: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: create {component}")]
    Create {
        path: String,
        component: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: open in {root}")]
    Open {
        path: String,
        root: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Resolves `path` (absolute, inside the container) against `root`: returns the container path with
/// every symlink replaced by its target. Missing components are kept as they are. A symlink whose
/// target climbs above `/` with `..` is an error.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<String, PathError> {
    let mut pending: Vec<String> = split(path).into_iter().rev().collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                if done.pop().is_none() {
                    return Err(PathError::Escape {
                        path: path.into(),
                        link: "..".into(),
                    });
                }
                continue;
            }
            _ => {}
        }
        let host = root.join(done.join("/")).join(&c);
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                done.push(c);
                continue;
            }
            Err(source) => {
                return Err(PathError::Inspect {
                    path: path.into(),
                    component: host,
                    source,
                })
            }
        };
        if !meta.file_type().is_symlink() {
            done.push(c);
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(PathError::Loop { path: path.into() });
        }
        let target = fs::read_link(&host).map_err(|source| PathError::Inspect {
            path: path.into(),
            component: host.clone(),
            source,
        })?;
        let t = target.to_string_lossy().into_owned();
        let link_name = format!(
            "/{}",
            done.iter()
                .chain(std::iter::once(&c))
                .cloned()
                .collect::<Vec<_>>()
                .join("/")
        );
        if t.starts_with('/') {
            done.clear();
        }
        // Check the target on its own: its `..` may not climb above the root.
        let mut depth = done.len() as i64;
        for tc in split(&t) {
            match tc.as_str() {
                "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            if depth < 0 {
                return Err(PathError::Escape {
                    path: path.into(),
                    link: format!("{link_name} -> {t}"),
                });
            }
        }
        for tc in split(&t).into_iter().rev() {
            pending.push(tc);
        }
    }
    Ok(format!("/{}", done.join("/")))
}

fn split(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// What to create at a mount point that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Makes sure container path `path` exists under `root` (creating the missing directories, and the last
/// component as `kind`), and returns an `O_PATH` descriptor of it opened inside the root.
/// The container path the descriptor was opened at comes back too: once something is mounted there,
/// reopening that path (with [`open_in_root`]) reaches the new mount, while the old descriptor still
/// names the directory underneath.
pub fn prepare_in_root(
    root: &Path,
    root_fd: &OwnedFd,
    path: &str,
    kind: Kind,
) -> Result<(OwnedFd, String), PathError> {
    let resolved = resolve_in_root(root, path)?;
    let comps = split(&resolved);
    let mut parent = String::from("/");
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let here = format!("{}/{}", parent.trim_end_matches('/'), c);
        let cerr = |source| PathError::Create {
            path: path.into(),
            component: PathBuf::from(&here),
            source,
        };
        if open_in_root(root_fd, &here, libc::O_PATH).is_err() {
            // Create the component relative to its parent's descriptor, itself opened inside the root:
            // a symlink planted in between cannot redirect the creation to the host.
            let dir = open_in_root(root_fd, &parent, libc::O_PATH | libc::O_DIRECTORY).map_err(cerr)?;
            let made = if last && kind == Kind::File {
                nix::fcntl::openat(
                    Some(std::os::fd::AsRawFd::as_raw_fd(&dir)),
                    c.as_str(),
                    nix::fcntl::OFlag::O_CREAT
                        | nix::fcntl::OFlag::O_EXCL
                        | nix::fcntl::OFlag::O_WRONLY
                        | nix::fcntl::OFlag::O_CLOEXEC
                        | nix::fcntl::OFlag::O_NOFOLLOW,
                    nix::sys::stat::Mode::from_bits_truncate(0o644),
                )
                .map(|fd| {
                    let _ = nix::unistd::close(fd);
                })
            } else {
                nix::sys::stat::mkdirat(
                    Some(std::os::fd::AsRawFd::as_raw_fd(&dir)),
                    c.as_str(),
                    nix::sys::stat::Mode::from_bits_truncate(0o755),
                )
            };
            match made {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(cerr(e.into())),
            }
        }
        parent = here;
    }
    let fd = open_in_root(root_fd, &resolved, libc::O_PATH).map_err(|source| PathError::Open {
        path: path.into(),
        root: root.into(),
        source,
    })?;
    Ok((fd, resolved))
}

/// Opens container path `path` with `openat2(RESOLVE_IN_ROOT)` relative to the root descriptor.
pub fn open_in_root(root_fd: &OwnedFd, path: &str, flags: i32) -> io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2_in_root(root_fd.as_fd(), rel, flags, 0, ResolveFlags::default())
}

/// The `/proc/self/fd/N` path of a descriptor, to hand to calls that take a path (mount(2)).
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Whether a path names a directory (following symlinks), for choosing a bind mount's target kind.
pub fn is_dir(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_dir()).unwrap_or(false)
}

/// Joins a container path onto a host root.
pub fn host_path(root: &Path, container_path: &str) -> PathBuf {
    root.join(OsStr::from_bytes(
        container_path.trim_start_matches('/').as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("run")).unwrap();
        fs::create_dir_all(r.join("var")).unwrap();
        symlink("/run", r.join("var/run")).unwrap();
        symlink("../run", r.join("var/run2")).unwrap();
        assert_eq!(resolve_in_root(r, "/var/run/x").unwrap(), "/run/x");
        assert_eq!(resolve_in_root(r, "/var/run2/x").unwrap(), "/run/x");
        assert_eq!(resolve_in_root(r, "/missing/a/b").unwrap(), "/missing/a/b");
    }

    #[test]
    fn escaping_symlinks_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("a")).unwrap();
        symlink("../../../../etc", r.join("a/evil")).unwrap();
        symlink("/../etc", r.join("abs")).unwrap();
        let e = resolve_in_root(r, "/a/evil/passwd").unwrap_err().to_string();
        assert!(e.contains("escapes") && e.contains("/a/evil"), "{e}");
        assert!(resolve_in_root(r, "/abs").is_err());
        symlink("loop", r.join("loop")).unwrap();
        assert!(matches!(resolve_in_root(r, "/loop"), Err(PathError::Loop { .. })));
    }

    #[test]
    fn prepare_creates_inside_the_root_only() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        symlink("/etc", r.join("link")).unwrap();
        let root_fd: OwnedFd = fs::File::open(r).unwrap().into();
        prepare_in_root(r, &root_fd, "/link/sub/file", Kind::File).unwrap();
        assert!(r.join("etc/sub/file").is_file());
        prepare_in_root(r, &root_fd, "/a/b/c", Kind::Dir).unwrap();
        assert!(r.join("a/b/c").is_dir());
    }
}

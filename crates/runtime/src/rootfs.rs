//! Building the container's root filesystem inside its new mount namespace (run by the container's
//! init, before and after `pivot_root`). Every mount target is resolved inside the rootfs
//! ([`crate::paths`]) and mounted through its `/proc/self/fd/N` path, so no path from the bundle can
//! make a mount land on the host.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{chdir, chroot, pivot_root, Gid, Uid};

use crate::paths::{self, fd_path, Kind, PathError};
use crate::plan::{DevicePlan, MountPlan, Plan};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("make / a slave mount")]
    Propagation(#[source] nix::Error),
    #[error("bind the rootfs {0} onto itself")]
    BindRoot(PathBuf, #[source] nix::Error),
    #[error("open rootfs {0}")]
    OpenRoot(PathBuf, #[source] io::Error),
    #[error("mounts[{index}]: {source}")]
    Target {
        index: usize,
        #[source]
        source: PathError,
    },
    #[error("mount {what} on {dest}: {source}")]
    Mount {
        what: String,
        dest: String,
        #[source]
        source: nix::Error,
    },
    #[error("set attributes of the mount on {dest}")]
    SetAttr {
        dest: String,
        #[source]
        source: io::Error,
    },
    #[error("copy up {dest}")]
    CopyUp {
        dest: String,
        #[source]
        source: io::Error,
    },
    #[error("linux.devices: {path}: {source}")]
    DeviceTarget {
        path: String,
        #[source]
        source: PathError,
    },
    #[error("create device {path}")]
    Device {
        path: String,
        #[source]
        source: nix::Error,
    },
    #[error("create link {path}")]
    Link {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("pivot_root to {0}")]
    Pivot(PathBuf, #[source] nix::Error),
    #[error("{what} {path}")]
    Path {
        what: &'static str,
        path: String,
        #[source]
        source: nix::Error,
    },
}

/// How the container's cgroup appears at a `cgroup` mount.
#[derive(Debug, Clone, Default)]
pub struct CgroupMount {
    /// cgroup v2: the host directory of the container's cgroup (bind-mounted without a cgroup
    /// namespace; with one, cgroup2 is mounted directly).
    pub v2_dir: Option<PathBuf>,
    /// cgroup v1: (name under /sys/fs/cgroup, host directory of the container's cgroup there).
    pub v1: Vec<(String, PathBuf)>,
    /// Whether the container has a cgroup namespace of its own.
    pub cgroupns: bool,
}

fn mnt_err(what: impl Into<String>, dest: &str) -> impl FnOnce(nix::Error) -> RootfsError + '_ {
    let what = what.into();
    move |source| RootfsError::Mount {
        what,
        dest: dest.to_string(),
        source,
    }
}

/// Steps 1-2 of the rootfs: the host's mounts stop propagating into the container, and the rootfs
/// becomes a mount point (pivot_root needs one). Returns a descriptor of the rootfs.
pub fn prepare_root(rootfs: &Path, propagation: Option<MsFlags>) -> Result<OwnedFd, RootfsError> {
    // 1. Mark every mount slave (or shared, if rootfsPropagation asks for it): nothing the container
    //    mounts reaches the host, and the host's later mounts may still arrive.
    let shared = propagation.is_some_and(|p| p.contains(MsFlags::MS_SHARED));
    let prop = if shared {
        MsFlags::MS_SHARED | MsFlags::MS_REC
    } else {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    };
    mount(None::<&str>, "/", None::<&str>, prop, None::<&str>).map_err(RootfsError::Propagation)?;
    // 2. pivot_root refuses a new root whose parent mount is shared: make that parent private
    //    (in this mount namespace only).
    if let Some(parent) = parent_mount(rootfs) {
        mount(
            None::<&str>,
            &parent,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(RootfsError::Propagation)?;
    }
    // 3. Bind the rootfs onto itself so it is a mount point of this namespace (private until
    //    pivot_root is done; finish_root applies rootfsPropagation afterwards).
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| RootfsError::BindRoot(rootfs.to_path_buf(), e))?;
    if shared {
        mount(
            None::<&str>,
            rootfs,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(RootfsError::Propagation)?;
    }
    Ok(fs::File::open(rootfs)
        .map_err(|e| RootfsError::OpenRoot(rootfs.to_path_buf(), e))?
        .into())
}

/// The mount point of the mount that holds `path` (the longest mount point above it), from
/// /proc/self/mountinfo.
fn parent_mount(path: &Path) -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let dir = path.parent().unwrap_or(path);
    info.lines()
        .filter_map(|l| {
            l.split(' ')
                .nth(4)
                .map(|m| PathBuf::from(m.replace("\\040", " ")))
        })
        .filter(|m| dir.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
}

/// Step 3: every mount of `mounts[]`, in order.
pub fn mount_all(plan: &Plan, rootfs: &Path, root_fd: &OwnedFd, cg: &CgroupMount) -> Result<(), RootfsError> {
    for (index, m) in plan.mounts.iter().enumerate() {
        if m.fstype == "cgroup" || m.fstype == "cgroup2" {
            mount_cgroup(m, index, rootfs, root_fd, cg)?;
            continue;
        }
        let kind = if m.options.is_bind() && !paths::is_dir(Path::new(&m.source)) {
            Kind::File
        } else {
            Kind::Dir
        };
        let (target, resolved) = paths::prepare_in_root(rootfs, root_fd, &m.destination, kind)
            .map_err(|source| RootfsError::Target { index, source })?;
        mount_one(m, &target, &|| reopen(root_fd, &resolved, &m.destination))?;
    }
    Ok(())
}

/// A fresh descriptor of a mount point after something was mounted on it (the old one names the
/// directory underneath).
fn reopen(root_fd: &OwnedFd, resolved: &str, dest: &str) -> Result<OwnedFd, RootfsError> {
    paths::open_in_root(root_fd, resolved, libc::O_PATH).map_err(|e| RootfsError::Mount {
        what: "reopen".into(),
        dest: dest.to_string(),
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

fn mount_one(
    m: &MountPlan,
    target: &OwnedFd,
    reopen: &dyn Fn() -> Result<OwnedFd, RootfsError>,
) -> Result<(), RootfsError> {
    let dest = fd_path(target);
    let o = &m.options;
    let copyup = o.tmpcopyup;
    if o.is_bind() {
        let base = MsFlags::MS_BIND | (o.flags & MsFlags::MS_REC);
        mount(Some(m.source.as_str()), &dest, None::<&str>, base, None::<&str>)
            .map_err(mnt_err(&m.source, &m.destination))?;
        let extra = o.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(&fd_path(&reopen()?), extra, &m.destination)?;
        }
    } else {
        let data = (!o.data.is_empty()).then_some(o.data.as_str());
        let old = if copyup {
            Some(fs::File::open(&dest).map_err(|e| RootfsError::CopyUp {
                dest: m.destination.clone(),
                source: e,
            })?)
        } else {
            None
        };
        mount(
            Some(m.source.as_str()),
            &dest,
            Some(m.fstype.as_str()),
            o.flags,
            data,
        )
        .map_err(mnt_err(format!("{} ({})", m.source, m.fstype), &m.destination))?;
        if let Some(old) = old {
            // The descriptor still reaches the directory under the new tmpfs: copy its content up.
            let from = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&old)));
            let top = reopen()?;
            copy_tree(&from, &fd_path(&top)).map_err(|e| RootfsError::CopyUp {
                dest: m.destination.clone(),
                source: e,
            })?;
        }
    }
    if o.propagation.is_empty() && o.rec_attr.set == 0 && o.rec_attr.clear == 0 {
        return Ok(());
    }
    let top = reopen()?;
    for p in &o.propagation {
        mount(None::<&str>, &fd_path(&top), None::<&str>, *p, None::<&str>)
            .map_err(mnt_err("propagation", &m.destination))?;
    }
    if o.rec_attr.set != 0 || o.rec_attr.clear != 0 {
        berth_sys::fs::mount_setattr(top.as_fd(), "", true, o.rec_attr.set, o.rec_attr.clear).map_err(
            |source| RootfsError::SetAttr {
                dest: m.destination.clone(),
                source,
            },
        )?;
    }
    Ok(())
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locks in a user namespace (nodev,
/// nosuid, noexec, atime) when the first try is refused.
fn remount_bind(dest: &Path, flags: MsFlags, name: &str) -> Result<(), RootfsError> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(None::<&str>, dest, None::<&str>, base | flags, None::<&str>) {
        Err(nix::Error::EPERM) => {
            let locked = statvfs(dest)
                .map(|s| locked_flags(s.flags()))
                .unwrap_or(MsFlags::empty());
            mount(
                None::<&str>,
                dest,
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
            .map_err(mnt_err("remount", name))
        }
        r => r.map_err(mnt_err("remount", name)),
    }
}

fn locked_flags(f: FsFlags) -> MsFlags {
    let mut m = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(a) {
            m |= b;
        }
    }
    m
}

fn mount_cgroup(
    m: &MountPlan,
    index: usize,
    rootfs: &Path,
    root_fd: &OwnedFd,
    cg: &CgroupMount,
) -> Result<(), RootfsError> {
    let (target, resolved) = paths::prepare_in_root(rootfs, root_fd, &m.destination, Kind::Dir)
        .map_err(|source| RootfsError::Target { index, source })?;
    let dest = fd_path(&target);
    let ro =
        m.options.flags & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    if let Some(dir) = &cg.v2_dir {
        if cg.cgroupns {
            mount(
                Some("cgroup2"),
                &dest,
                Some("cgroup2"),
                m.options.flags,
                None::<&str>,
            )
            .map_err(mnt_err("cgroup2", &m.destination))?;
        } else {
            mount(
                Some(dir.as_path()),
                &dest,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(mnt_err(dir.display().to_string(), &m.destination))?;
            if !ro.is_empty() {
                remount_bind(
                    &fd_path(&reopen(root_fd, &resolved, &m.destination)?),
                    ro,
                    &m.destination,
                )?;
            }
        }
        return Ok(());
    }
    // cgroup v1: a tmpfs holding one directory per hierarchy, each a bind of the container's cgroup.
    mount(
        Some("tmpfs"),
        &dest,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(mnt_err("tmpfs", &m.destination))?;
    for (name, dir) in &cg.v1 {
        let sub = format!("{}/{}", m.destination.trim_end_matches('/'), name);
        let (t, sub_resolved) = paths::prepare_in_root(rootfs, root_fd, &sub, Kind::Dir)
            .map_err(|source| RootfsError::Target { index, source })?;
        mount(
            Some(dir.as_path()),
            &fd_path(&t),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(mnt_err(dir.display().to_string(), &sub))?;
        let top = reopen(root_fd, &sub_resolved, &sub)?;
        remount_bind(
            &fd_path(&top),
            ro | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            &sub,
        )?;
    }
    if ro.contains(MsFlags::MS_RDONLY) {
        let top = reopen(root_fd, &resolved, &m.destination)?;
        mount(
            None::<&str>,
            &fd_path(&top),
            None::<&str>,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            Some("mode=755"),
        )
        .map_err(mnt_err("remount tmpfs", &m.destination))?;
    }
    Ok(())
}

/// Step 4: device nodes (mknod, or a bind of the host's node inside a user namespace) and the /dev
/// links every container has.
pub fn create_devices(
    plan: &Plan,
    rootfs: &Path,
    root_fd: &OwnedFd,
    in_userns: bool,
) -> Result<(), RootfsError> {
    for d in &plan.devices {
        create_device(d, rootfs, root_fd, in_userns)?;
    }
    if plan.dev_is_bind {
        return Ok(());
    }
    if paths::resolve_in_root(rootfs, "/dev").ok().as_deref() != Some("/dev") {
        return Ok(()); // /dev is a symlink in this image: leave it alone rather than write elsewhere.
    }
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (target, link) in links {
        make_link(rootfs, target, link)?;
    }
    // /dev/ptmx points into the container's own devpts instance.
    let ptmx = paths::host_path(rootfs, "/dev/ptmx");
    if fs::symlink_metadata(&ptmx).is_ok() {
        let _ = fs::remove_file(&ptmx);
    }
    make_link(rootfs, "pts/ptmx", "/dev/ptmx")
}

/// Creates a /dev link (the caller checked that /dev is a real directory of the rootfs).
fn make_link(rootfs: &Path, target: &str, link: &str) -> Result<(), RootfsError> {
    match symlink(target, paths::host_path(rootfs, link)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(RootfsError::Link {
            path: link.into(),
            source,
        }),
    }
}

fn create_device(
    d: &DevicePlan,
    rootfs: &Path,
    root_fd: &OwnedFd,
    in_userns: bool,
) -> Result<(), RootfsError> {
    let parent = Path::new(&d.path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/dev".into());
    paths::prepare_in_root(rootfs, root_fd, &parent, Kind::Dir)
        .map(|_| ())
        .map_err(|source| RootfsError::DeviceTarget {
            path: d.path.clone(),
            source,
        })?;
    let resolved = paths::resolve_in_root(rootfs, &d.path).map_err(|source| RootfsError::DeviceTarget {
        path: d.path.clone(),
        source,
    })?;
    let host = paths::host_path(rootfs, &resolved);
    let dev_err = |source| RootfsError::Device {
        path: d.path.clone(),
        source,
    };
    if in_userns {
        // mknod is refused in a user namespace: bind the host's node instead.
        let (t, _) = paths::prepare_in_root(rootfs, root_fd, &resolved, Kind::File).map_err(|source| {
            RootfsError::DeviceTarget {
                path: d.path.clone(),
                source,
            }
        })?;
        return mount(
            Some(d.path.as_str()),
            &fd_path(&t),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(dev_err);
    }
    let kind = match d.kind {
        'b' => SFlag::S_IFBLK,
        'p' => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let _ = fs::remove_file(&host);
    let dev = nix::sys::stat::makedev(d.major, d.minor);
    mknod(&host, kind, Mode::from_bits_truncate(d.mode), dev).map_err(dev_err)?;
    // mknod's mode went through the umask: set it exactly, then the owner (never following a link).
    nix::sys::stat::fchmodat(
        None,
        &host,
        Mode::from_bits_truncate(d.mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(dev_err)?;
    nix::unistd::fchownat(
        None,
        &host,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(dev_err)
}

/// Step 6: make the rootfs `/`. With pivot_root, the old root is stacked under the new one and detached
/// (no put_old directory needed); with `no_pivot`, the rootfs is moved over `/` and chrooted into.
pub fn switch_root(rootfs: &Path, no_pivot: bool) -> Result<(), RootfsError> {
    let perr = |what: &'static str| {
        move |source| RootfsError::Path {
            what,
            path: rootfs.display().to_string(),
            source,
        }
    };
    chdir(rootfs).map_err(perr("chdir to"))?;
    if no_pivot {
        mount(Some(rootfs), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(perr("move mount of"))?;
        chroot(".").map_err(perr("chroot to"))?;
    } else {
        pivot_root(".", ".").map_err(|e| RootfsError::Pivot(rootfs.to_path_buf(), e))?;
        // The old root is now mounted on top of the new one at "/": keep its unmount from reaching
        // the host, then detach it.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(perr("make slave"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(perr("detach old root from"))?;
    }
    chdir("/").map_err(perr("chdir to / of"))
}

/// Step 7 (after the switch, paths are the container's): masked paths get /dev/null or an empty
/// read-only tmpfs; read-only paths are bound read-only; missing paths are skipped.
pub fn mask_and_protect(plan: &Plan) -> Result<(), RootfsError> {
    for p in &plan.readonly_paths {
        let perr = |what| {
            move |source| RootfsError::Path {
                what,
                path: p.clone(),
                source,
            }
        };
        match mount(
            Some(p.as_str()),
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Err(nix::Error::ENOENT) => continue,
            r => r.map_err(perr("bind read-only path"))?,
        }
        remount_bind(Path::new(p), MsFlags::MS_RDONLY | MsFlags::MS_REC, p)?;
    }
    for p in &plan.masked_paths {
        let perr = |what| {
            move |source| RootfsError::Path {
                what,
                path: p.clone(),
                source,
            }
        };
        let meta = match fs::metadata(p) {
            Ok(m) => m,
            Err(_) => continue,
        };
        if meta.is_dir() {
            mount(
                Some("tmpfs"),
                p.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(perr("mask directory"))?;
        } else {
            mount(
                Some("/dev/null"),
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(perr("mask file"))?;
        }
    }
    Ok(())
}

/// Step 8: the rootfs propagation asked for, then `/` read-only if `root.readonly`.
pub fn finish_root(plan: &Plan) -> Result<(), RootfsError> {
    if let Some(p) = plan.rootfs_propagation {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).map_err(|source| RootfsError::Path {
            what: "set propagation of",
            path: "/".into(),
            source,
        })?;
    }
    if plan.root_readonly {
        remount_bind(Path::new("/"), MsFlags::MS_RDONLY, "/")?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for e in fs::read_dir(from)? {
        let e = e?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let meta = fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        if !ft.is_symlink() {
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        let _ = nix::unistd::fchownat(
            None,
            &dst,
            Some(Uid::from_raw(meta.uid())),
            Some(Gid::from_raw(meta.gid())),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
    }
    Ok(())
}

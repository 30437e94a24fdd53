//! Applying a layer tarball to a directory, with nothing written outside it.
//!
//! Every name is classified first ([`crate::layerpath`]): `..` and NUL are refused, absolute names are
//! taken relative to the layer. Every operation happens relative to a descriptor of the parent
//! directory, opened with `openat2(RESOLVE_NO_SYMLINKS)` below the layer's root: a symlink that an
//! earlier entry (or a lower layer) planted can never redirect a write, and hard links may only point
//! at files inside the layer. Device nodes are refused unless allowed. Whiteouts become overlayfs
//! whiteouts (a 0/0 character device; `trusted.overlay.opaque` on opaque directories) for a layer
//! unpacked into its own directory, or deletions when layers are flattened into one tree. The diff ID
//! (sha256 of the uncompressed stream) is computed while reading, and a size limit stops
//! decompression bombs.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::stat::{fchmodat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::layerpath::{classify, LayerPath, LayerPathError};
use crate::manifest::Compression;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(transparent)]
    Name(#[from] LayerPathError),
    #[error("layer entry {path:?}: {what}")]
    Refused { path: String, what: String },
    #[error("layer entry {path:?}: {op}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("read the layer")]
    Read(#[source] io::Error),
    #[error("the layer is larger than the limit of {0} bytes uncompressed")]
    TooLarge(u64),
    #[error("start the zstd decoder")]
    Zstd(#[source] io::Error),
}

/// How whiteouts are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode2 {
    /// The layer gets a directory of its own (an overlayfs lower layer).
    Overlay,
    /// The layer is applied on top of the layers below, in the same directory.
    Flatten,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode2,
    pub allow_devices: bool,
    /// Uncompressed size limit.
    pub max_bytes: u64,
    /// Give entries the owners the layer says (needs root; off for a rootless unpack).
    pub preserve_owner: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode2::Overlay,
            allow_devices: false,
            max_bytes: 64 << 30,
            preserve_owner: true,
        }
    }
}

/// What unpacking produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub diff_id: Digest,
    pub size: u64,
}

/// Hashes and counts what passes through, refusing more than `limit` bytes.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                UnpackError::TooLarge(self.limit),
            ));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Applies the (possibly compressed) layer read from `blob` to `dest`, which must exist.
pub fn apply(
    blob: impl Read,
    compression: Compression,
    dest: &Path,
    opts: &Options,
) -> Result<Applied, UnpackError> {
    let stream: Box<dyn Read> = match compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(blob)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(blob).map_err(UnpackError::Zstd)?),
    };
    let mut hashing = Hashing {
        inner: stream,
        hasher: Sha256::new(),
        count: 0,
        limit: opts.max_bytes,
    };
    let root: OwnedFd = File::open(dest)
        .map_err(|source| UnpackError::Io {
            path: "/".into(),
            op: "open the layer directory",
            source,
        })?
        .into();
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive.entries().map_err(UnpackError::Read)?;
        for entry in entries {
            let mut entry = entry.map_err(read_err)?;
            apply_entry(&root, &mut entry, opts)?;
        }
    }
    // Whatever follows the archive (tar padding) belongs to the diff ID too.
    io::copy(&mut hashing, &mut io::sink()).map_err(read_err)?;
    let size = hashing.count;
    Ok(Applied {
        diff_id: Digest::from_hasher(hashing.hasher),
        size,
    })
}

fn read_err(e: io::Error) -> UnpackError {
    if let Some(UnpackError::TooLarge(n)) = e.get_ref().and_then(|i| i.downcast_ref::<UnpackError>()) {
        return UnpackError::TooLarge(*n);
    }
    UnpackError::Read(e)
}

fn io_err<'a>(path: &'a str, op: &'static str) -> impl FnOnce(nix::Error) -> UnpackError + 'a {
    move |e| UnpackError::Io {
        path: path.to_string(),
        op,
        source: e.into(),
    }
}

/// Opens (creating missing directories on the way) the directory `rel` below `root`, refusing any
/// symlink among its components.
fn open_dir(root: &OwnedFd, rel: &str, path: &str) -> Result<OwnedFd, UnpackError> {
    let mut cur = root.try_clone().map_err(|source| UnpackError::Io {
        path: path.into(),
        op: "dup",
        source,
    })?;
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        let flags = berth_sys::ResolveFlags(berth_sys::ResolveFlags::NO_SYMLINKS);
        let next =
            match berth_sys::openat2_in_root(cur.as_fd(), comp, libc::O_PATH | libc::O_DIRECTORY, 0, flags) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    mkdirat(Some(cur.as_raw_fd()), comp, Mode::from_bits_truncate(0o755))
                        .map_err(io_err(path, "create parent directory"))?;
                    berth_sys::openat2_in_root(cur.as_fd(), comp, libc::O_PATH | libc::O_DIRECTORY, 0, flags)
                        .map_err(|source| UnpackError::Io {
                            path: path.into(),
                            op: "open parent directory",
                            source,
                        })?
                }
                Err(e)
                    if e.raw_os_error() == Some(libc::ELOOP)
                        || e.raw_os_error() == Some(libc::ENOTDIR)
                        || e.raw_os_error() == Some(libc::EXDEV) =>
                {
                    return Err(UnpackError::Refused {
                        path: path.into(),
                        what: format!("its parent {rel:?} is not a directory of the layer (a symlink?)"),
                    });
                }
                Err(source) => {
                    return Err(UnpackError::Io {
                        path: path.into(),
                        op: "open parent directory",
                        source,
                    })
                }
            };
        cur = next;
    }
    Ok(cur)
}

fn split(rel: &str) -> (&str, &str) {
    match rel.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", rel),
    }
}

/// Removes whatever is at `name` in `dir` (a tree, for a directory). Missing is fine.
fn remove_any(dir: &OwnedFd, name: &str, path: &str) -> Result<(), UnpackError> {
    match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::EISDIR) | Err(nix::Error::EPERM) => {
            let sub = berth_sys::openat2_in_root(
                dir.as_fd(),
                name,
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
                berth_sys::ResolveFlags(berth_sys::ResolveFlags::NO_SYMLINKS),
            )
            .map_err(|source| UnpackError::Io {
                path: path.into(),
                op: "open for removal",
                source,
            })?;
            clear_dir(&sub, path)?;
            unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir)
                .map_err(io_err(path, "remove directory"))
        }
        Err(e) => Err(io_err(path, "remove")(e)),
    }
}

/// Removes everything inside directory `dir`.
fn clear_dir(dir: &OwnedFd, path: &str) -> Result<(), UnpackError> {
    let proc = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let names: Vec<String> = std::fs::read_dir(&proc)
        .map_err(|source| UnpackError::Io {
            path: path.into(),
            op: "list",
            source,
        })?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for n in names {
        remove_any(dir, &n, path)?;
    }
    Ok(())
}

fn apply_entry<R: Read>(
    root: &OwnedFd,
    entry: &mut tar::Entry<'_, R>,
    opts: &Options,
) -> Result<(), UnpackError> {
    let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let rel = match classify(&raw)? {
        LayerPath::Root => return Ok(()),
        LayerPath::Whiteout(rel) => return whiteout(root, &rel, &raw, opts),
        LayerPath::Opaque(rel) => return opaque(root, &rel, &raw, opts),
        LayerPath::Entry(rel) => rel,
    };
    let (parent, name) = split(&rel);
    let dir = open_dir(root, parent, &raw)?;
    let h = entry.header().clone();
    let mode = h.mode().unwrap_or(0o644) & 0o7777;
    let uid = h.uid().unwrap_or(0) as u32;
    let gid = h.gid().unwrap_or(0) as u32;
    let kind = h.entry_type();
    let d = Some(dir.as_raw_fd());
    if !kind.is_dir() {
        remove_any(&dir, name, &raw)?;
    }
    match kind {
        tar::EntryType::Directory => {
            match mkdirat(d, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) => {}
                Err(nix::Error::EEXIST) => {
                    // An existing directory stays (with its content); anything else is replaced.
                    if berth_sys::openat2_in_root(
                        dir.as_fd(),
                        name,
                        libc::O_PATH | libc::O_DIRECTORY,
                        0,
                        berth_sys::ResolveFlags(berth_sys::ResolveFlags::NO_SYMLINKS),
                    )
                    .is_err()
                    {
                        remove_any(&dir, name, &raw)?;
                        mkdirat(d, name, Mode::from_bits_truncate(0o700))
                            .map_err(io_err(&raw, "create directory"))?;
                    }
                }
                Err(e) => return Err(io_err(&raw, "create directory")(e)),
            }
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let fd = berth_sys::openat2_in_root(
                dir.as_fd(),
                name,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                0o600,
                berth_sys::ResolveFlags(berth_sys::ResolveFlags::NO_SYMLINKS),
            )
            .map_err(|source| UnpackError::Io {
                path: raw.clone(),
                op: "create file",
                source,
            })?;
            let mut f = File::from(fd);
            io::copy(entry, &mut f).map_err(read_err)?;
            set_xattrs(entry, f.as_fd(), &raw)?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            symlinkat(target.as_str(), d, name).map_err(io_err(&raw, "create symlink"))?;
            if opts.preserve_owner {
                fchownat(
                    d,
                    name,
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(io_err(&raw, "chown"))?;
            }
            return Ok(());
        }
        tar::EntryType::Link => {
            let target_raw = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let LayerPath::Entry(target) = classify(&target_raw)? else {
                return Err(UnpackError::Refused {
                    path: raw,
                    what: format!("hard link to {target_raw:?}"),
                });
            };
            let (tp, tn) = split(&target);
            let tdir = open_dir(root, tp, &raw)?;
            linkat(Some(tdir.as_raw_fd()), tn, d, name, nix::fcntl::AtFlags::empty())
                .map_err(io_err(&raw, "create hard link"))?;
            return Ok(());
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            if !opts.allow_devices {
                return Err(UnpackError::Refused {
                    path: raw,
                    what: "device nodes are not allowed here".into(),
                });
            }
            let kind = if kind == tar::EntryType::Char {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            let dev = nix::sys::stat::makedev(
                h.device_major().ok().flatten().unwrap_or(0) as u64,
                h.device_minor().ok().flatten().unwrap_or(0) as u64,
            );
            mknodat(d, name, kind, Mode::from_bits_truncate(mode), dev)
                .map_err(io_err(&raw, "create device"))?;
        }
        tar::EntryType::Fifo => {
            mknodat(d, name, SFlag::S_IFIFO, Mode::from_bits_truncate(mode), 0)
                .map_err(io_err(&raw, "create fifo"))?;
        }
        tar::EntryType::XGlobalHeader
        | tar::EntryType::XHeader
        | tar::EntryType::GNULongName
        | tar::EntryType::GNULongLink => return Ok(()),
        other => {
            return Err(UnpackError::Refused {
                path: raw,
                what: format!("unsupported entry type {other:?}"),
            })
        }
    }
    // Owner first (it clears setuid/setgid), then the exact mode.
    if opts.preserve_owner {
        fchownat(
            d,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io_err(&raw, "chown"))?;
    }
    fchmodat(
        d,
        name,
        Mode::from_bits_truncate(mode),
        FchmodatFlags::FollowSymlink,
    )
    .map_err(io_err(&raw, "chmod"))?;
    Ok(())
}

/// PAX `SCHILY.xattr.*` records (file capabilities among them) on a regular file.
fn set_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    fd: std::os::fd::BorrowedFd<'_>,
    raw: &str,
) -> Result<(), UnpackError> {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return Ok(());
    };
    for ext in exts.flatten() {
        let Ok(key) = ext.key() else { continue };
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            berth_sys::fs::fsetxattr(fd, name, ext.value_bytes()).map_err(|source| UnpackError::Io {
                path: raw.into(),
                op: "set xattr",
                source,
            })?;
        }
    }
    Ok(())
}

fn whiteout(root: &OwnedFd, rel: &str, raw: &str, opts: &Options) -> Result<(), UnpackError> {
    let (parent, name) = split(rel);
    let dir = open_dir(root, parent, raw)?;
    remove_any(&dir, name, raw)?;
    if opts.mode == Mode2::Overlay {
        // overlayfs' whiteout: a character device 0/0 with the deleted name.
        mknodat(Some(dir.as_raw_fd()), name, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(io_err(raw, "create whiteout"))?;
    }
    Ok(())
}

fn opaque(root: &OwnedFd, rel: &str, raw: &str, opts: &Options) -> Result<(), UnpackError> {
    let dir = open_dir(root, rel, raw)?;
    let rd = berth_sys::openat2_in_root(
        dir.as_fd(),
        ".",
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        berth_sys::ResolveFlags::default(),
    )
    .map_err(|source| UnpackError::Io {
        path: raw.into(),
        op: "open opaque directory",
        source,
    })?;
    match opts.mode {
        Mode2::Overlay => {
            berth_sys::fs::fsetxattr(rd.as_fd(), "trusted.overlay.opaque", b"y").map_err(|source| {
                UnpackError::Io {
                    path: raw.into(),
                    op: "mark opaque",
                    source,
                }
            })
        }
        Mode2::Flatten => clear_dir(&rd, raw),
    }
}

#[cfg(test)]
mod tests;

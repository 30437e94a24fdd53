//! `cp`: files between a container and the local filesystem through
//! `GET`/`HEAD`/`PUT /containers/{id}/archive?path=`, with docker's copy rules (moby's
//! `archive.CopyTo` and `PrepareArchiveCopy`): a directory destination receives the source
//! by its name, anything else is renamed to the destination's name. `-` streams a tar.

use super::lifecycle::container_path;
use super::paths::clean;
use crate::args::{bool_flag, Count, Parsed};
use crate::commands::{fail, Ctx, Def, Fail, Result};
use crate::http::{Body, Error};
use serde_json::Value;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

/// Go's `os.ModeDir` and `os.ModeSymlink`.
const MODE_DIR: u64 = 1 << 31;
const MODE_SYMLINK: u64 = 1 << 27;

/// The decoded `X-Docker-Container-Path-Stat` header.
#[derive(Debug, Default, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u64,
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & MODE_SYMLINK != 0
    }
}

/// base64(JSON) -> the stat; docker's `getContainerPathStatFromHeader`.
pub fn decode_path_stat(header: &str) -> std::result::Result<PathStat, String> {
    let raw = crate::config::base64_decode(header)
        .ok_or_else(|| "unable to decode container path stat header: illegal base64 data".to_string())?;
    let v: Value = serde_json::from_slice(&raw)
        .map_err(|e| format!("unable to decode container path stat header: {e}"))?;
    Ok(PathStat {
        name: v.get("name").and_then(Value::as_str).unwrap_or("").into(),
        size: v.get("size").and_then(Value::as_i64).unwrap_or(0),
        mode: v.get("mode").and_then(Value::as_u64).unwrap_or(0),
        link_target: v.get("linkTarget").and_then(Value::as_str).unwrap_or("").into(),
    })
}

/// docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an absolute path or
/// starts with `.`.
pub fn split_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

fn has_trailing_sep(p: &str) -> bool {
    p.ends_with('/')
}

fn specifies_current_dir(p: &str) -> bool {
    p == "." || p.ends_with("/.")
}

/// moby's `SplitPathDirEntry`.
pub fn split_dir_entry(p: &str) -> (String, String) {
    let mut cleaned = clean(p);
    if specifies_current_dir(p) {
        cleaned.push_str("/.");
    }
    match cleaned.rsplit_once('/') {
        Some(("", base)) => ("/".into(), base.into()),
        Some((dir, base)) => (dir.into(), base.into()),
        None => (".".into(), cleaned),
    }
}

/// moby's `PreserveTrailingDotOrSeparator` after making a local path absolute.
fn resolve_local(p: &str) -> io::Result<String> {
    let abs = if p.starts_with('/') {
        clean(p)
    } else {
        clean(&format!("{}/{p}", std::env::current_dir()?.display()))
    };
    let mut out = abs;
    if !specifies_current_dir(&out) && specifies_current_dir(p) {
        if !has_trailing_sep(&out) {
            out.push('/');
        }
        out.push('.');
    }
    if !has_trailing_sep(&out) && has_trailing_sep(p) {
        out.push('/');
    }
    Ok(out)
}

/// Where an archive goes and how its names change: moby's `PrepareArchiveCopy`.
/// `dst` is (path, exists, is_dir); the answer is (directory, old base, new base).
pub fn prepare_copy(
    src_path: &str,
    src_is_dir: bool,
    rebase: Option<&str>,
    dst: (&str, bool, bool),
) -> std::result::Result<(String, Option<(String, String)>), String> {
    let (dst_path, exists, is_dir) = dst;
    let (dst_dir, dst_base) = split_dir_entry(dst_path);
    let (_, src_base) = split_dir_entry(src_path);
    let src_base = rebase.map(str::to_string).unwrap_or(src_base);
    if exists && is_dir {
        return Ok((dst_path.to_string(), None));
    }
    if exists && src_is_dir {
        return Err("cannot copy directory".into());
    }
    if !exists && !src_is_dir && (has_trailing_sep(dst_path) || specifies_current_dir(dst_path)) {
        return Err("no such directory".into());
    }
    Ok((dst_dir, Some((src_base, dst_base))))
}

/// moby's `RebaseArchiveEntries`: entry names (and hard link targets) under `old` move
/// under `new`.
fn rebase_name(name: &str, old: &str, new: &str) -> Option<String> {
    let name = name.trim_start_matches("./");
    let old = old.trim_start_matches("./");
    if old == "." {
        return Some(format!("{new}/{name}"));
    }
    if name == old || name == format!("{old}/") {
        return Some(format!("{new}{}", &name[old.len()..]));
    }
    name.strip_prefix(&format!("{old}/"))
        .map(|rest| format!("{new}/{rest}"))
}

/// Unpacks `content` into `dir`, renaming entries; entries leaving `dir` are refused.
fn untar(content: impl Read, dir: &Path, rebase: Option<&(String, String)>) -> io::Result<()> {
    let mut ar = tar::Archive::new(content);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let target = match rebase {
            Some((old, new)) => match rebase_name(&name, old, new) {
                Some(n) => n,
                None => continue,
            },
            None => name,
        };
        let dest = dir.join(&target);
        if entry.header().entry_type().is_hard_link() {
            // a hard link names another entry: renamed the same way, inside `dir`
            let link = entry
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let link = match rebase {
                Some((old, new)) => rebase_name(&link, old, new).unwrap_or(link),
                None => link,
            };
            if Path::new(&link)
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
                || Path::new(&target)
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(io::Error::other(format!("invalid tar entry {target:?}")));
            }
            let _ = std::fs::remove_file(&dest);
            std::fs::hard_link(dir.join(link.trim_start_matches('/')), &dest)?;
            continue;
        }
        if let (Ok(m), false) = (
            std::fs::symlink_metadata(&dest),
            entry.header().entry_type().is_dir(),
        ) {
            if m.is_dir() {
                return Err(io::Error::other(format!(
                    "cannot overwrite directory {:?} with non-directory {:?}",
                    dest.display(),
                    target
                )));
            }
        }
        let mut staged = PathBuf::from(&target);
        if staged.as_os_str().is_empty() {
            staged = PathBuf::from(".");
        }
        entry.set_unpack_xattrs(false);
        let ok = unpack_entry(&mut entry, dir, &staged)?;
        if !ok {
            return Err(io::Error::other(format!("invalid tar entry {target:?}")));
        }
    }
    Ok(())
}

fn unpack_entry(entry: &mut tar::Entry<impl Read>, dir: &Path, name: &Path) -> io::Result<bool> {
    let dest = dir.join(name);
    if name
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Ok(false);
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    entry.unpack(&dest).map(|_| true)
}

fn copy_from(ctx: &Ctx, container: &str, src: &str, dst: &str, follow: bool, quiet: bool) -> Result {
    let dst = if dst == "-" {
        dst.to_string()
    } else {
        resolve_local(dst)?
    };
    if dst != "-" {
        validate_output_path(&dst)?;
    }
    let mut src = src.to_string();
    let mut rebase = None;
    if follow {
        if let Ok(st) = stat(ctx, container, &src) {
            if st.is_symlink() {
                let mut target = st.link_target.clone();
                if !target.starts_with('/') {
                    target = clean(&format!("{}/{target}", split_dir_entry(&src).0));
                }
                if Path::new(&src).file_name() != Path::new(&target).file_name() {
                    rebase = Path::new(&src)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned());
                }
                src = target;
            }
        }
    }
    let resp = ctx.api.request(
        "GET",
        &container_path(container, "/archive", &[("path", src.clone())]),
        &[],
        Body::Empty,
    )?;
    let st = resp
        .header("X-Docker-Container-Path-Stat")
        .map(decode_path_stat)
        .transpose()
        .map_err(fail)?
        .unwrap_or_default();
    let mut body = Counting {
        inner: resp.body,
        n: 0,
    };
    if dst == "-" {
        let mut out = ctx.stdout.borrow_mut();
        io::copy(&mut body, &mut **out)?;
        return Ok(());
    }
    let (exists, is_dir) = local_dest(&dst)?;
    let (dir, names) =
        prepare_copy(&src, st.is_dir(), rebase.as_deref(), (&dst, exists, is_dir)).map_err(fail)?;
    // a followed link's entries first take the link's name, then the destination's
    let first = rebase.map(|r| (split_dir_entry(&src).1, r));
    let names = match (first, names) {
        (Some((target, _)), Some((_, new))) => Some((target, new)),
        (first, names) => first.or(names),
    };
    untar(&mut body, Path::new(&dir), names.as_ref())?;
    if !quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {dst}",
            crate::units::human_size_precision(body.n as f64, 3)
        );
    }
    Ok(())
}

/// A reader that counts what passed.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// docker's `ValidateOutputPath`.
fn validate_output_path(p: &str) -> Result {
    let cleaned = clean(p);
    let dir = split_dir_entry(&cleaned).0;
    if dir != "." && !Path::new(&dir).exists() {
        return Err(fail(format!(
            "invalid output path: directory {dir:?} does not exist"
        )));
    }
    if let Ok(m) = std::fs::metadata(p) {
        if !m.is_dir() && !m.is_file() {
            return Err(fail(format!(
                "invalid output path: {p:?} must be a directory or a regular file: got unsupported file mode"
            )));
        }
    }
    Ok(())
}

/// moby's `CopyInfoDestinationPath` for a local path: (exists, is_dir).
fn local_dest(p: &str) -> std::result::Result<(bool, bool), Fail> {
    match std::fs::metadata(p) {
        Ok(m) => Ok((true, m.is_dir())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((false, false)),
        Err(e) => Err(e.into()),
    }
}

/// `HEAD /containers/{id}/archive?path=`.
fn stat(ctx: &Ctx, container: &str, path: &str) -> std::result::Result<PathStat, Error> {
    let resp = ctx.api.request(
        "HEAD",
        &container_path(container, "/archive", &[("path", path.to_string())]),
        &[],
        Body::Empty,
    )?;
    let h = resp.header("X-Docker-Container-Path-Stat").unwrap_or("");
    decode_path_stat(h).map_err(Error::Protocol)
}

/// A tar of the local `src` (named by its base name, or `rebase`) on a pipe.
fn tar_source(src: &Path, name: String) -> io::Result<io::PipeReader> {
    let (reader, writer) = io::pipe()?;
    let src = src.to_path_buf();
    std::thread::spawn(move || {
        let mut b = tar::Builder::new(writer);
        b.follow_symlinks(false);
        let r = if std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_dir()) {
            b.append_dir_all(&name, &src)
        } else {
            b.append_path_with_name(&src, &name)
        };
        if r.is_ok() {
            let _ = b.finish();
        }
    });
    Ok(reader)
}

fn copy_to(ctx: &Ctx, container: &str, src: &str, dst: &str, follow: bool, uid: bool) -> Result {
    let src = if src == "-" {
        src.to_string()
    } else {
        resolve_local(src)?
    };
    let mut dst_path = dst.to_string();
    let mut st = stat(ctx, container, dst);
    if let Ok(s) = &st {
        if s.is_symlink() {
            let mut target = s.link_target.clone();
            if !target.starts_with('/') {
                target = clean(&format!("{}/{target}", split_dir_entry(dst).0));
            }
            dst_path = target;
            st = stat(ctx, container, &dst_path);
        }
    }
    if let Err(e @ Error::Connect(..)) = &st {
        return Err(fail(e.to_string()));
    }
    let (exists, is_dir) = st.as_ref().map(|s| (true, s.is_dir())).unwrap_or((false, false));
    let mut q = vec![("noOverwriteDirNonDir", "true".to_string())];
    if uid {
        q.push(("copyUIDGID", "true".into()));
    }
    let (dir, body): (String, Box<dyn Read>) = if src == "-" {
        if !is_dir {
            return Err(fail(format!(
                "destination \"{container}:{dst}\" must be a directory"
            )));
        }
        (dst_path.clone(), Box::new(io::stdin()))
    } else {
        let mut local = PathBuf::from(src.trim_end_matches("/.").trim_end_matches('/'));
        if local.as_os_str().is_empty() {
            local = PathBuf::from("/");
        }
        if follow {
            local = std::fs::canonicalize(&local).unwrap_or(local);
        }
        let meta = std::fs::symlink_metadata(&local).map_err(|e| {
            fail(format!(
                "lstat {}: {}",
                local.display(),
                super::config::os_message(&e)
            ))
        })?;
        let (dir, names) =
            prepare_copy(&src, meta.is_dir(), None, (&dst_path, exists, is_dir)).map_err(fail)?;
        let name = match (&names, specifies_current_dir(&src)) {
            (Some((_, new)), _) => new.clone(),
            (None, true) => ".".into(),
            (None, false) => split_dir_entry(&src).1,
        };
        (dir, Box::new(tar_source(&local, name)?))
    };
    q.insert(0, ("path", dir));
    ctx.api.request(
        "PUT",
        &container_path(container, "/archive", &q),
        &[],
        Body::Stream {
            reader: body,
            content_type: "application/x-tar",
            length: None,
        },
    )?;
    Ok(())
}

fn run_cp(ctx: &Ctx, p: &Parsed) -> Result {
    let (src_c, src) = split_arg(&p.args[0]);
    let (dst_c, dst) = split_arg(&p.args[1]);
    let follow = p.bool("follow-link");
    match (src_c, dst_c) {
        (Some(c), None) => copy_from(ctx, c, src, dst, follow, p.bool("quiet")),
        (None, Some(c)) => copy_to(ctx, c, src, dst, follow, p.bool("archive")),
        (Some(_), Some(_)) => Err(fail("copying between containers is not supported")),
        (None, None) => Err(fail("must specify at least one container source")),
    }
    .map_err(|f: Fail| Fail {
        message: f.message.replace("error reading the daemon's answer: ", ""),
        code: f.code,
    })
}

pub const CP: Def = Def {
    name: "cp",
    args: "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    desc: "Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.",
    aliases: "berth container cp, berth cp",
    options: "  -a, --archive       Archive mode (copy all uid/gid information)
  -L, --follow-link   Always follow symbol link in SRC_PATH
  -q, --quiet         Suppress progress output during copy. Progress
                      output is automatically suppressed if no terminal
                      is attached
",
    flags: &[
        bool_flag(Some('a'), "archive"),
        bool_flag(Some('L'), "follow-link"),
        bool_flag(Some('q'), "quiet"),
    ],
    count: Count::Exact(2),
    run: run_cp,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_stat_header() {
        // {"name":"etc","size":4096,"mode":2147484141,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}
        let h = "eyJuYW1lIjoiZXRjIiwic2l6ZSI6NDA5NiwibW9kZSI6MjE0NzQ4NDE0MSwibXRpbWUiOiIyMDI0LTAxLTAxVDAwOjAwOjAwWiIsImxpbmtUYXJnZXQiOiIifQ==";
        let st = decode_path_stat(h).unwrap();
        assert_eq!(st.name, "etc");
        assert_eq!(st.size, 4096);
        assert!(st.is_dir() && !st.is_symlink());
        // {"name":"sh","size":7,"mode":134218239,"mtime":"2024-01-01T00:00:00Z","linkTarget":"busybox"}
        let h = "eyJuYW1lIjoic2giLCJzaXplIjo3LCJtb2RlIjoxMzQyMTgyMzksIm10aW1lIjoiMjAyNC0wMS0wMVQwMDowMDowMFoiLCJsaW5rVGFyZ2V0IjoiYnVzeWJveCJ9";
        let st = decode_path_stat(h).unwrap();
        assert!(st.is_symlink() && !st.is_dir());
        assert_eq!(st.link_target, "busybox");
        assert!(decode_path_stat("!!!").is_err());
    }

    #[test]
    fn splits_arguments_like_docker() {
        assert_eq!(split_arg("web:/etc/passwd"), (Some("web"), "/etc/passwd"));
        assert_eq!(split_arg("/abs:path"), (None, "/abs:path"));
        assert_eq!(split_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_arg("local.txt"), (None, "local.txt"));
        assert_eq!(split_dir_entry("/etc/passwd"), ("/etc".into(), "passwd".into()));
        assert_eq!(split_dir_entry("/etc/."), ("/etc".into(), ".".into()));
        assert_eq!(split_dir_entry("/x"), ("/".into(), "x".into()));
    }

    #[test]
    fn copy_rules() {
        // into an existing directory: by the source's name
        assert_eq!(
            prepare_copy("/etc/passwd", false, None, ("/tmp", true, true)),
            Ok(("/tmp".into(), None))
        );
        // a file over a file, or to a new name: renamed
        assert_eq!(
            prepare_copy("/etc/passwd", false, None, ("/tmp/out", false, false)),
            Ok(("/tmp".into(), Some(("passwd".into(), "out".into()))))
        );
        assert_eq!(
            prepare_copy("/etc", true, None, ("/tmp/file", true, false)),
            Err("cannot copy directory".into())
        );
        assert_eq!(
            prepare_copy("/etc/passwd", false, None, ("/tmp/new/", false, false)),
            Err("no such directory".into())
        );
        assert_eq!(
            rebase_name("etc/passwd", "etc", "newdir"),
            Some("newdir/passwd".into())
        );
        assert_eq!(rebase_name("etc", "etc", "newdir"), Some("newdir".into()));
        assert_eq!(rebase_name("./hostname", ".", "out"), Some("out/hostname".into()));
        assert_eq!(rebase_name("other", "etc", "x"), None);
    }
}

//! Mounts: `mounts[]` turned into pure data (flags, propagation, recursive attributes, filesystem data),
//! with runc's option vocabulary, and the lexical checks of destinations.

use nix::mount::MsFlags;
use serde::{Deserialize, Serialize};

use super::PlanError;

/// `MOUNT_ATTR_*` bits for `mount_setattr(2)` (the recursive `r*` options).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
    /// The atime field, cleared before one of the atime values is set.
    pub const ATIME_MASK: u64 = 0x70;
}

/// Recursive attribute changes (`rro`, `rnosuid`, ...): bits to set and bits to clear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecAttr {
    pub set: u64,
    pub clear: u64,
}

/// Parsed `options` of one mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountOptions {
    /// `MS_*` flags, propagation excluded.
    #[serde(with = "ms_flags")]
    pub flags: MsFlags,
    /// Propagation changes applied after the mount, in order (`MS_SHARED`, `MS_REC|MS_PRIVATE`, ...).
    #[serde(with = "ms_flags_vec")]
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes applied with `mount_setattr` after the mount.
    pub rec_attr: RecAttr,
    /// The filesystem-specific data (`mode=755,size=65536k`).
    pub data: String,
    /// runc's `tmpcopyup` extension: copy the destination's content into the new tmpfs.
    pub tmpcopyup: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            rec_attr: RecAttr::default(),
            data: String::new(),
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

fn flag_option(o: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match o {
        "async" => (false, F::MS_SYNCHRONOUS),
        "atime" => (false, F::MS_NOATIME),
        "bind" => (true, F::MS_BIND),
        "defaults" => (true, F::empty()),
        "dev" => (false, F::MS_NODEV),
        "diratime" => (false, F::MS_NODIRATIME),
        "dirsync" => (true, F::MS_DIRSYNC),
        "exec" => (false, F::MS_NOEXEC),
        "iversion" => (true, F::MS_I_VERSION),
        "noiversion" => (false, F::MS_I_VERSION),
        "lazytime" => (true, F::MS_LAZYTIME),
        "nolazytime" => (false, F::MS_LAZYTIME),
        "loud" => (false, F::MS_SILENT),
        "mand" => (true, F::MS_MANDLOCK),
        "nomand" => (false, F::MS_MANDLOCK),
        "noatime" => (true, F::MS_NOATIME),
        "nodev" => (true, F::MS_NODEV),
        "nodiratime" => (true, F::MS_NODIRATIME),
        "noexec" => (true, F::MS_NOEXEC),
        "norelatime" => (false, F::MS_RELATIME),
        "nostrictatime" => (false, F::MS_STRICTATIME),
        "nosuid" => (true, F::MS_NOSUID),
        "nosymfollow" => (true, F::from_bits_retain(256)),
        "symfollow" => (false, F::from_bits_retain(256)),
        "rbind" => (true, F::MS_BIND | F::MS_REC),
        "relatime" => (true, F::MS_RELATIME),
        "remount" => (true, F::MS_REMOUNT),
        "ro" => (true, F::MS_RDONLY),
        "rw" => (false, F::MS_RDONLY),
        "silent" => (true, F::MS_SILENT),
        "strictatime" => (true, F::MS_STRICTATIME),
        "suid" => (false, F::MS_NOSUID),
        "sync" => (true, F::MS_SYNCHRONOUS),
        _ => return None,
    })
}

fn propagation_option(o: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match o {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

fn rec_attr_option(o: &str) -> Option<(bool, u64)> {
    Some(match o {
        "rro" => (true, attr::RDONLY),
        "rrw" => (false, attr::RDONLY),
        "rnosuid" => (true, attr::NOSUID),
        "rsuid" => (false, attr::NOSUID),
        "rnodev" => (true, attr::NODEV),
        "rdev" => (false, attr::NODEV),
        "rnoexec" => (true, attr::NOEXEC),
        "rexec" => (false, attr::NOEXEC),
        "rnodiratime" => (true, attr::NODIRATIME),
        "rdiratime" => (false, attr::NODIRATIME),
        "rrelatime" => (true, attr::RELATIME),
        "rnorelatime" => (false, attr::RELATIME),
        "rnoatime" => (true, attr::NOATIME),
        "ratime" => (false, attr::NOATIME),
        "rstrictatime" => (true, attr::STRICTATIME),
        "rnostrictatime" => (false, attr::STRICTATIME),
        "rnosymfollow" => (true, attr::NOSYMFOLLOW),
        "rsymfollow" => (false, attr::NOSYMFOLLOW),
        _ => return None,
    })
}

/// Parses a mount's option list with runc's vocabulary: flags, propagation, recursive attributes and
/// the rest as filesystem data. `field` names the list in errors.
pub fn parse_options(field: &str, options: &[String]) -> Result<MountOptions, PlanError> {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    for o in options {
        if let Some((set, f)) = flag_option(o) {
            if set {
                out.flags.insert(f);
            } else {
                out.flags.remove(f);
            }
        } else if let Some(p) = propagation_option(o) {
            out.propagation.push(p);
        } else if let Some((set, bit)) = rec_attr_option(o) {
            let atime = matches!(o.as_str(), "rrelatime" | "rnoatime" | "rstrictatime");
            if atime {
                out.rec_attr.clear |= attr::ATIME_MASK;
            }
            if set {
                out.rec_attr.set |= bit;
                out.rec_attr.clear &= !bit;
            } else {
                out.rec_attr.clear |= bit;
                out.rec_attr.set &= !bit;
            }
        } else if o == "tmpcopyup" {
            out.tmpcopyup = true;
        } else if o == "idmap" || o == "ridmap" {
            return Err(PlanError::Unsupported {
                field: field.to_string(),
                what: format!("mount option {o:?}"),
            });
        } else if o.is_empty() {
            return Err(PlanError::invalid(
                field.to_string(),
                "empty mount option".to_string(),
            ));
        } else {
            data.push(o.as_str());
        }
    }
    out.data = data.join(",");
    Ok(out)
}

/// Cleans an absolute container path lexically (`//`, `.`, `..`). A `..` that would climb above `/`
/// is an escape and an error; a relative path is taken relative to `/` as runc does.
pub fn clean_container_path(field: &str, path: &str) -> Result<String, PlanError> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PlanError::invalid(
                        field.to_string(),
                        format!("{path:?} escapes the root filesystem through \"..\""),
                    ));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

mod ms_flags {
    use nix::mount::MsFlags;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &MsFlags, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(f.bits())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MsFlags, D::Error> {
        Ok(MsFlags::from_bits_retain(u64::deserialize(d)?))
    }
}

mod ms_flags_vec {
    use nix::mount::MsFlags;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(f: &[MsFlags], s: S) -> Result<S::Ok, S::Error> {
        f.iter().map(|x| x.bits()).collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MsFlags>, D::Error> {
        Ok(Vec::<u64>::deserialize(d)?
            .into_iter()
            .map(MsFlags::from_bits_retain)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(
            "mounts[0].options",
            &list.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = opts(&["rbind", "ro", "rprivate", "nodev"]);
        assert!(o.is_bind());
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NODEV
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.data, "");
    }

    #[test]
    fn later_options_override_earlier_ones() {
        assert_eq!(opts(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(opts(&["nosuid", "suid", "noexec"]).flags, MsFlags::MS_NOEXEC);
    }

    #[test]
    fn recursive_attributes() {
        let o = opts(&["rbind", "rro", "rnosuid", "rnoatime"]);
        assert_eq!(o.rec_attr.set, attr::RDONLY | attr::NOSUID | attr::NOATIME);
        assert_eq!(o.rec_attr.clear, attr::ATIME_MASK & !attr::NOATIME);
        assert!(o.flags.contains(MsFlags::MS_BIND));
    }

    #[test]
    fn unsupported_and_empty_options_fail() {
        let e = parse_options("mounts[2].options", &["idmap".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mounts[2].options") && e.contains("idmap"), "{e}");
        assert!(parse_options("mounts[0].options", &["".into()]).is_err());
    }

    #[test]
    fn destinations_are_cleaned_and_escapes_refused() {
        assert_eq!(clean_container_path("f", "/a//b/./c/../d").unwrap(), "/a/b/d");
        assert_eq!(clean_container_path("f", "tmp").unwrap(), "/tmp");
        assert_eq!(clean_container_path("f", "/").unwrap(), "/");
        let e = clean_container_path("mounts[1].destination", "/../../etc")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mounts[1].destination") && e.contains("escapes"),
            "{e}"
        );
        assert!(clean_container_path("f", "/a/../../b").is_err());
    }
}

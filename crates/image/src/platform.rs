//! Platforms (`linux/amd64`, `linux/arm64/v8`): parsing `--platform`, the host's own, and choosing the
//! best entry of an image index, as docker does (os and architecture must match; a variant asked for
//! must match, with arm64's implicit v8 and arm's v7 normalized).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64")]
pub struct PlatformError(pub String);

/// Normalizes an architecture name and its variant as containerd's platforms package does.
fn normalize(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let v = variant.map(|s| s.to_ascii_lowercase());
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), v.filter(|v| v != "v1")),
        "aarch64" | "arm64" => ("arm64".into(), v.filter(|v| v != "v8" && v != "8")),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => ("arm".into(), Some(v.unwrap_or_else(|| "v7".into()))),
        "i386" | "i686" | "386" => ("386".into(), v),
        other => (other.to_string(), v),
    }
}

impl Platform {
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        let (architecture, variant) = normalize(arch, variant);
        Platform {
            architecture,
            os: os.to_ascii_lowercase(),
            variant,
            ..Default::default()
        }
    }

    /// The platform this binary runs on.
    pub fn host() -> Platform {
        Platform::new(std::env::consts::OS, std::env::consts::ARCH, None)
    }

    /// Whether an index entry for `other` can run where `self` is asked for.
    pub fn matches(&self, other: &Platform) -> bool {
        let (a1, v1) = normalize(&self.architecture, self.variant.as_deref());
        let (a2, v2) = normalize(&other.architecture, other.variant.as_deref());
        self.os == other.os.to_ascii_lowercase() && a1 == a2 && (v1.is_none() || v1 == v2)
    }

    /// Picks the index entry to use for `self`: the first exact match (variant included), else the first
    /// entry that matches.
    pub fn choose<'a, T>(
        &self,
        entries: &'a [T],
        platform_of: impl Fn(&T) -> Option<&Platform>,
    ) -> Option<&'a T> {
        let exact = entries.iter().find(|e| {
            platform_of(e).is_some_and(|p| {
                self.matches(p)
                    && normalize(&p.architecture, p.variant.as_deref()).1
                        == normalize(&self.architecture, self.variant.as_deref()).1
            })
        });
        exact.or_else(|| {
            entries
                .iter()
                .find(|e| platform_of(e).is_some_and(|p| self.matches(p)))
        })
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
                Ok(Platform::new(os, arch, Some(variant)))
            }
            _ => Err(PlatformError(s.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_normalize() {
        assert_eq!(
            "linux/amd64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!("linux/x86_64".parse::<Platform>().unwrap().architecture, "amd64");
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            "linux/arm".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
        for bad in ["linux", "linux/", "/amd64", "linux/amd64/v1/x", "linux/am d64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
        assert_eq!(Platform::host().os, std::env::consts::OS);
    }

    #[test]
    fn choose_from_an_index() {
        let list = vec![
            Platform::new("linux", "arm", Some("v6")),
            Platform::new("linux", "arm", Some("v7")),
            Platform::new("linux", "amd64", None),
            Platform::new("windows", "amd64", None),
            Platform::new("linux", "arm64", Some("v8")),
        ];
        let pick = |s: &str| s.parse::<Platform>().unwrap().choose(&list, |p| Some(p)).cloned();
        assert_eq!(pick("linux/amd64"), Some(list[2].clone()));
        assert_eq!(pick("linux/arm/v6"), Some(list[0].clone()));
        assert_eq!(pick("linux/arm"), Some(list[1].clone()));
        assert_eq!(pick("linux/arm64"), Some(list[4].clone()));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("windows/amd64"), Some(list[3].clone()));
    }
}

//! The names inside a layer tarball, checked before anything is written: normalized (`./a//b` is
//! `a/b`), never absolute, never climbing out with `..`, and classified into OCI whiteouts
//! (`.wh.name` deletes `name` from the layers below, `.wh..wh..opq` hides a directory's lower
//! content) and plain entries.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayerPathError {
    #[error("layer entry {0:?} climbs out of the layer with \"..\"")]
    Escape(String),
    #[error("layer entry {0:?} has a NUL byte")]
    Nul(String),
    #[error("layer entry {0:?} is a whiteout of nothing")]
    EmptyWhiteout(String),
    #[error("layer entry {0:?}: whiteout names cannot be used for files")]
    ReservedName(String),
}

/// What a tar entry name means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerPath {
    /// The layer's root itself (`.` or `/`): nothing to create.
    Root,
    /// A file, directory, link... at this relative path (components joined by `/`).
    Entry(String),
    /// Delete this relative path from the layers below.
    Whiteout(String),
    /// Hide what the layers below have in this directory (relative path, empty for the root).
    Opaque(String),
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Normalizes and classifies a tar entry name. Absolute names are taken relative to the layer root
/// (as docker does); any `..` that climbs above the root is an error.
pub fn classify(raw: &str) -> Result<LayerPath, LayerPathError> {
    if raw.contains('\0') {
        return Err(LayerPathError::Nul(raw.to_string()));
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(LayerPathError::Escape(raw.to_string()));
                }
            }
            c => parts.push(c),
        }
    }
    // A `..` anywhere is refused even when it stays inside: `a/../b` in a layer is a trick, not a
    // name a build tool writes.
    if raw.split('/').any(|c| c == "..") {
        return Err(LayerPathError::Escape(raw.to_string()));
    }
    let Some(last) = parts.pop() else {
        return Ok(LayerPath::Root);
    };
    let parent = parts.join("/");
    let join = |name: &str| {
        if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}/{name}")
        }
    };
    if last == OPAQUE {
        return Ok(LayerPath::Opaque(parent));
    }
    if let Some(name) = last.strip_prefix(WHITEOUT_PREFIX) {
        if name.is_empty() || name == "." {
            return Err(LayerPathError::EmptyWhiteout(raw.to_string()));
        }
        if name == ".." {
            return Err(LayerPathError::Escape(raw.to_string()));
        }
        if name.starts_with(WHITEOUT_PREFIX) {
            return Err(LayerPathError::ReservedName(raw.to_string()));
        }
        return Ok(LayerPath::Whiteout(join(name)));
    }
    Ok(LayerPath::Entry(join(last)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_names() {
        assert_eq!(
            classify("./etc/passwd").unwrap(),
            LayerPath::Entry("etc/passwd".into())
        );
        assert_eq!(
            classify("etc//hosts").unwrap(),
            LayerPath::Entry("etc/hosts".into())
        );
        assert_eq!(classify("/usr/bin/").unwrap(), LayerPath::Entry("usr/bin".into()));
        assert_eq!(classify("./").unwrap(), LayerPath::Root);
        assert_eq!(classify("/").unwrap(), LayerPath::Root);
    }

    #[test]
    fn whiteouts() {
        assert_eq!(
            classify("etc/.wh.motd").unwrap(),
            LayerPath::Whiteout("etc/motd".into())
        );
        assert_eq!(classify(".wh.tmp").unwrap(), LayerPath::Whiteout("tmp".into()));
        assert_eq!(
            classify("var/cache/.wh..wh..opq").unwrap(),
            LayerPath::Opaque("var/cache".into())
        );
        assert_eq!(
            classify(".wh..wh..opq").unwrap(),
            LayerPath::Opaque(String::new())
        );
        assert!(matches!(
            classify("a/.wh."),
            Err(LayerPathError::EmptyWhiteout(_))
        ));
        assert!(matches!(
            classify("a/.wh..wh.x"),
            Err(LayerPathError::ReservedName(_))
        ));
    }

    #[test]
    fn hostile_names() {
        for bad in [
            "../etc/passwd",
            "a/../../etc",
            "/../x",
            "a/../b",
            "./..",
            "a/.wh...",
        ] {
            assert!(classify(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(matches!(classify("a\0b"), Err(LayerPathError::Nul(_))));
    }
}

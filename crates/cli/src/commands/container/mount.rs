//! `--mount`: docker's `MountOpt.Set`, a CSV of `key=value` fields into the API's `Mount`
//! (fields in its order, empty ones left out), with docker's messages.

use crate::goparse::{csv_record, ram_in_bytes};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// `VolumeOptions`: no-copy, labels, subpath, driver name, driver options.
#[derive(Default)]
struct VolumeOpts {
    nocopy: bool,
    labels: BTreeMap<String, String>,
    subpath: String,
    driver: String,
    opts: Option<BTreeMap<String, String>>,
}

#[derive(Default)]
struct Mount {
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    consistency: String,
    bind: Option<Map<String, Value>>,
    volume: Option<VolumeOpts>,
    image_subpath: Option<String>,
    tmpfs: Option<(i64, u32)>,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {v}")),
    }
}

/// Parses one `--mount` value; `cwd` makes a relative source starting with `.` absolute.
pub fn parse(value: &str, cwd: &str) -> Result<Value, String> {
    let mut m = Mount {
        kind: "volume".into(),
        ..Mount::default()
    };
    fn volume(m: &mut Mount) -> &mut VolumeOpts {
        m.volume.get_or_insert_with(Default::default)
    }
    fn bind(m: &mut Mount) -> &mut Map<String, Value> {
        m.bind.get_or_insert_with(Map::new)
    }
    for field in csv_record(value)? {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = true,
                "volume-nocopy" => volume(&mut m).nocopy = true,
                "bind-nonrecursive" => {
                    bind(&mut m).insert("NonRecursive".into(), json!(true));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        match key.as_str() {
            "type" => m.kind = val.to_lowercase(),
            "source" | "src" => {
                m.source = if !val.starts_with('/') && val.starts_with('.') {
                    super::paths::clean(&format!("{cwd}/{val}"))
                } else {
                    val
                }
            }
            "target" | "dst" | "destination" => m.target = val,
            "readonly" | "ro" => m.read_only = parse_bool(&key, &val)?,
            "consistency" => m.consistency = val.to_lowercase(),
            "bind-propagation" => {
                bind(&mut m).insert("Propagation".into(), json!(val.to_lowercase()));
            }
            "bind-nonrecursive" => {
                let b = parse_bool(&key, &val)?;
                bind(&mut m).insert("NonRecursive".into(), json!(b));
            }
            "bind-recursive" => {
                let opt = match val.as_str() {
                    "enabled" => None,
                    "disabled" => Some("NonRecursive"),
                    "writable" => Some("ReadOnlyNonRecursive"),
                    "readonly" => Some("ReadOnlyForceRecursive"),
                    _ => {
                        return Err(format!(
                            "invalid value for {key}: {val} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                        ))
                    }
                };
                let b = bind(&mut m);
                if let Some(o) = opt {
                    b.insert(o.into(), json!(true));
                }
            }
            "volume-subpath" => volume(&mut m).subpath = val,
            "volume-nocopy" => {
                volume(&mut m).nocopy = parse_bool("volume-nocopy", &val)
                    .map_err(|_| format!("invalid value for volume-nocopy: {val}"))?
            }
            "volume-label" => {
                if let Some((k, v)) =
                    Some(val.split_once('=').unwrap_or((&val, ""))).filter(|(k, _)| !k.is_empty())
                {
                    volume(&mut m).labels.insert(k.into(), v.into());
                }
            }
            "volume-driver" => volume(&mut m).driver = val,
            "volume-opt" => {
                let opts = volume(&mut m).opts.get_or_insert_with(BTreeMap::new);
                let (k, v) = val.split_once('=').unwrap_or((&val, ""));
                if !k.is_empty() {
                    opts.insert(k.into(), v.into());
                }
            }
            "image-subpath" => m.image_subpath = Some(val),
            "tmpfs-size" => {
                let size = ram_in_bytes(&val).map_err(|_| format!("invalid value for {key}: {val}"))?;
                m.tmpfs.get_or_insert((0, 0)).0 = size;
            }
            "tmpfs-mode" => {
                let mode =
                    u32::from_str_radix(&val, 8).map_err(|_| format!("invalid value for {key}: {val}"))?;
                m.tmpfs.get_or_insert((0, 0)).1 = mode;
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    check(&m)?;
    Ok(to_json(m))
}

fn check(m: &Mount) -> Result<(), String> {
    if m.kind.is_empty() {
        return Err("type is required".into());
    }
    if m.target.is_empty() {
        return Err("target is required".into());
    }
    for (set, kind, what) in [
        (m.volume.is_some(), "volume", "volume-*"),
        (m.image_subpath.is_some(), "image", "image-*"),
        (m.bind.is_some(), "bind", "bind-*"),
        (m.tmpfs.is_some(), "tmpfs", "tmpfs-*"),
    ] {
        if set && m.kind != kind {
            return Err(format!(
                "cannot mix '{what}' options with mount type '{}'",
                m.kind
            ));
        }
    }
    if let Some(b) = &m.bind {
        let on = |k: &str| b.get(k).and_then(Value::as_bool).unwrap_or(false);
        if on("ReadOnlyNonRecursive") && !m.read_only {
            return Err(
                "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction".into(),
            );
        }
        if on("ReadOnlyForceRecursive") {
            if !m.read_only {
                return Err(
                    "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"
                        .into(),
                );
            }
            if b.get("Propagation").and_then(Value::as_str) != Some("rprivate") {
                return Err("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction".into());
            }
        }
    }
    Ok(())
}

fn to_json(m: Mount) -> Value {
    let mut o = Map::new();
    for (k, v) in [("Type", &m.kind), ("Source", &m.source), ("Target", &m.target)] {
        if !v.is_empty() {
            o.insert(k.into(), json!(v));
        }
    }
    if m.read_only {
        o.insert("ReadOnly".into(), json!(true));
    }
    if !m.consistency.is_empty() {
        o.insert("Consistency".into(), json!(m.consistency));
    }
    if let Some(b) = m.bind {
        // BindOptions' field order, false ones left out
        let mut out = Map::new();
        for k in [
            "Propagation",
            "NonRecursive",
            "CreateMountpoint",
            "ReadOnlyNonRecursive",
            "ReadOnlyForceRecursive",
        ] {
            if let Some(v) = b.get(k).filter(|v| **v != json!(false)) {
                out.insert(k.into(), v.clone());
            }
        }
        o.insert("BindOptions".into(), Value::Object(out));
    }
    if let Some(VolumeOpts {
        nocopy,
        labels,
        subpath,
        driver,
        opts,
    }) = m.volume
    {
        let mut v = Map::new();
        if nocopy {
            v.insert("NoCopy".into(), json!(true));
        }
        if !labels.is_empty() {
            v.insert("Labels".into(), json!(labels));
        }
        if !subpath.is_empty() {
            v.insert("Subpath".into(), json!(subpath));
        }
        let mut d = Map::new();
        if !driver.is_empty() {
            d.insert("Name".into(), json!(driver));
        }
        if let Some(opts) = opts.filter(|o| !o.is_empty()) {
            d.insert("Options".into(), json!(opts));
        }
        v.insert("DriverConfig".into(), Value::Object(d));
        o.insert("VolumeOptions".into(), Value::Object(v));
    }
    if let Some(sub) = m.image_subpath {
        let mut i = Map::new();
        if !sub.is_empty() {
            i.insert("Subpath".into(), json!(sub));
        }
        o.insert("ImageOptions".into(), Value::Object(i));
    }
    if let Some((size, mode)) = m.tmpfs {
        let mut t = Map::new();
        if size != 0 {
            t.insert("SizeBytes".into(), json!(size));
        }
        if mode != 0 {
            t.insert("Mode".into(), json!(mode));
        }
        o.insert("TmpfsOptions".into(), Value::Object(t));
    }
    Value::Object(o)
}

/// The parse-time check of the `--mount` flag (a relative source does not matter here).
pub fn check_mount(v: &str) -> Result<(), String> {
    parse(v, "/").map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_as_docker() {
        let e = |v: &str| parse(v, "/").unwrap_err();
        assert_eq!(e("type=bind"), "target is required");
        assert_eq!(e("type=,dst=/x"), "type is required");
        assert_eq!(
            e("dst=/x,bogus"),
            "invalid field 'bogus' must be a key=value pair"
        );
        assert_eq!(e("dst=/x,foo=1"), "unexpected key 'foo' in 'foo=1'");
        assert_eq!(e("dst=/x,ro=maybe"), "invalid value for ro: maybe");
        assert_eq!(
            e("type=bind,dst=/x,volume-nocopy"),
            "cannot mix 'volume-*' options with mount type 'bind'"
        );
        assert_eq!(
            e("type=tmpfs,dst=/x,tmpfs-mode=9"),
            "invalid value for tmpfs-mode: 9"
        );
        assert_eq!(
            e("type=bind,dst=/x,bind-recursive=readonly,ro"),
            "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"
        );
        assert_eq!(e(""), "EOF");
        assert_eq!(
            parse("type=volume,dst=/v,volume-nocopy", "/")
                .unwrap()
                .to_string(),
            r#"{"Type":"volume","Target":"/v","VolumeOptions":{"NoCopy":true,"DriverConfig":{}}}"#
        );
    }
}

//! `info`, `version`, `system df`.

use super::{fail, Ctx, Def, Result};
use crate::args::{bool_flag, value_flag, Count, Parsed};
use crate::format::{self, row, Rows};
use crate::http::API_VERSION;
use crate::tabwriter::TabWriter;
use crate::template::{Options, Template};
use crate::units;
use serde_json::{json, Value};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("BERTH_GIT_COMMIT");
const RUSTC: &str = env!("BERTH_RUSTC_VERSION");

/// Go's GOARCH name of this machine.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        a => a,
    }
}

/// Runs a user template over `data` (docker's `--format` for info and version).
fn user_template(format: &str, data: &Value) -> std::result::Result<String, super::Fail> {
    let f = if format == "json" { "{{json .}}" } else { format };
    let t = Template::parse(f).map_err(|e| fail(format!("template parsing error: {e}")))?;
    let s = t
        .execute(data, Options::default())
        .map_err(|e| fail(format!("template parsing error: {e}")))?;
    Ok(s + "\n")
}

// ---- info

fn client_info(ctx: &Ctx) -> Value {
    json!({"Debug": ctx.debug, "Version": VERSION, "Context": "default", "Plugins": [], "Warnings": null})
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(x)) => x.clone(),
        Some(other) => other.to_string(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// docker's `prettyPrintServerInfo`, for the keys the reply has.
pub fn server_info_text(info: &Value) -> String {
    let mut o = String::new();
    let mut line = |label: &str, key: &str, non_empty: bool| {
        if info.get(key).is_some() {
            let val = s(info, key);
            if !(non_empty && val.is_empty()) {
                o.push_str(&format!("{label} {val}\n"));
            }
        }
    };
    line(" Containers:", "Containers", false);
    line("  Running:", "ContainersRunning", false);
    line("  Paused:", "ContainersPaused", false);
    line("  Stopped:", "ContainersStopped", false);
    line(" Images:", "Images", false);
    line(" Server Version:", "ServerVersion", true);
    line(" Storage Driver:", "Driver", true);
    let mut o2 = String::new();
    for pair in info
        .get("DriverStatus")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let p = strings(pair);
        if p.len() == 2 {
            o2.push_str(&format!("  {}: {}\n", p[0], p[1]));
        }
    }
    o.push_str(&o2);
    let mut line = |label: &str, key: &str, non_empty: bool| {
        if info.get(key).is_some() {
            let val = s(info, key);
            if !(non_empty && val.is_empty()) {
                o.push_str(&format!("{label} {val}\n"));
            }
        }
    };
    line(" Logging Driver:", "LoggingDriver", false);
    line(" Cgroup Driver:", "CgroupDriver", false);
    line(" Cgroup Version:", "CgroupVersion", false);
    if let Some(pl) = info.get("Plugins").filter(|p| p.is_object()) {
        o.push_str(" Plugins:\n");
        for (label, key) in [
            ("Volume", "Volume"),
            ("Network", "Network"),
            ("Authorization", "Authorization"),
            ("Log", "Log"),
        ] {
            let items = strings(pl.get(key).unwrap_or(&Value::Null));
            if key == "Authorization" && items.is_empty() {
                continue;
            }
            o.push_str(&format!("  {label}: {}\n", items.join(" ")));
        }
    }
    if let Some(state) = info.pointer("/Swarm/LocalNodeState").and_then(Value::as_str) {
        o.push_str(&format!(" Swarm: {state}\n"));
    }
    if let Some(rt) = info
        .get("Runtimes")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    {
        let names: Vec<&str> = rt.keys().map(String::as_str).collect();
        o.push_str(&format!(" Runtimes: {}\n", names.join(" ")));
        o.push_str(&format!(" Default Runtime: {}\n", s(info, "DefaultRuntime")));
    }
    if s(info, "OSType") == "linux" {
        if info.get("InitBinary").is_some() {
            o.push_str(&format!(" Init Binary: {}\n", s(info, "InitBinary")));
        }
        for (name, key) in [
            ("containerd", "ContainerdCommit"),
            ("runc", "RuncCommit"),
            ("init", "InitCommit"),
        ] {
            if let Some(c) = info.get(key).filter(|c| c.is_object()) {
                let (id, expected) = (s(c, "ID"), s(c, "Expected"));
                o.push_str(&format!(" {name} version: {id}"));
                if c.get("Expected").is_some() && id != expected {
                    o.push_str(&format!(" (expected: {expected})"));
                }
                o.push('\n');
            }
        }
        let opts = strings(info.get("SecurityOptions").unwrap_or(&Value::Null));
        if !opts.is_empty() {
            o.push_str(" Security Options:\n");
            for so in opts {
                let mut name = String::new();
                let mut profile = None;
                for kv in so.split(',') {
                    match kv.split_once('=') {
                        Some(("name", n)) => name = n.to_string(),
                        Some(("profile", p)) => profile = Some(p.to_string()),
                        _ => {}
                    }
                }
                o.push_str(&format!("  {name}\n"));
                if let Some(p) = profile {
                    o.push_str(&format!("   Profile: {p}\n"));
                }
            }
        }
    }
    let mut line = |label: &str, key: &str, non_empty: bool| {
        if info.get(key).is_some() {
            let val = s(info, key);
            if !(non_empty && val.is_empty()) {
                o.push_str(&format!("{label} {val}\n"));
            }
        }
    };
    line(" Kernel Version:", "KernelVersion", true);
    line(" Operating System:", "OperatingSystem", true);
    line(" OSType:", "OSType", true);
    line(" Architecture:", "Architecture", true);
    line(" CPUs:", "NCPU", false);
    if let Some(m) = info.get("MemTotal").and_then(Value::as_f64) {
        o.push_str(&format!(" Total Memory: {}\n", units::bytes_size(m)));
    }
    let mut line = |label: &str, key: &str, non_empty: bool| {
        if info.get(key).is_some() {
            let val = s(info, key);
            if !(non_empty && val.is_empty()) {
                o.push_str(&format!("{label} {val}\n"));
            }
        }
    };
    line(" Name:", "Name", true);
    line(" ID:", "ID", true);
    line(" Docker Root Dir:", "DockerRootDir", false);
    line(" Debug Mode:", "Debug", false);
    line(" Experimental:", "ExperimentalBuild", false);
    if let Some(rc) = info.get("RegistryConfig").filter(|r| r.is_object()) {
        let mut insecure = Vec::new();
        if let Some(ic) = rc.get("IndexConfigs").and_then(Value::as_object) {
            for v in ic.values() {
                if v.get("Secure") == Some(&Value::Bool(false)) {
                    insecure.push(s(v, "Name"));
                }
            }
        }
        insecure.extend(strings(rc.get("InsecureRegistryCIDRs").unwrap_or(&Value::Null)));
        if !insecure.is_empty() {
            o.push_str(" Insecure Registries:\n");
            for r in insecure {
                o.push_str(&format!("  {r}\n"));
            }
        }
    }
    if let Some(b) = info.get("LiveRestoreEnabled") {
        o.push_str(&format!(" Live Restore Enabled: {b}\n"));
    }
    o
}

fn run_info(ctx: &Ctx, p: &Parsed) -> Result {
    let format = p.value("format").unwrap_or("");
    if !format.is_empty() {
        let mut info = ctx.api.get_json("/info")?;
        if let Some(m) = info.as_object_mut() {
            m.insert("ClientInfo".into(), client_info(ctx));
        }
        return ctx.print(&user_template(format, &info)?);
    }
    ctx.print(&format!(
        "Client:\n Version:    {VERSION}\n Context:    default\n Debug Mode: {}\n\nServer:\n",
        ctx.debug
    ))?;
    let info = ctx.api.get_json("/info")?;
    ctx.print(&server_info_text(&info))?;
    ctx.print("\n")?;
    for w in strings(info.get("Warnings").unwrap_or(&Value::Null)) {
        eprintln!("{w}");
    }
    Ok(())
}

pub const INFO: Def = Def {
    name: "info",
    args: "[OPTIONS]",
    desc: "Display system-wide information",
    aliases: "berth system info, berth info",
    options: concat!(
        "  -f, --format string   Format output using a custom template:\n",
        format_template_help!()
    ),
    flags: &[value_flag(Some('f'), "format")],
    count: Count::None,
    run: run_info,
};

// ---- version

fn client_version() -> Value {
    json!({
        "Platform": {"Name": ""},
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": GIT_COMMIT,
        "RustVersion": RUSTC,
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "Context": "default",
    })
}

pub fn client_version_text() -> String {
    let c = client_version();
    format!(
        "Client:\n Version:\t{}\n API version:\t{}\n Rust version:\t{}\n Git commit:\t{}\n OS/Arch:\t{}/{}\n Context:\t{}\n",
        s(&c, "Version"),
        s(&c, "ApiVersion"),
        s(&c, "RustVersion"),
        s(&c, "GitCommit"),
        s(&c, "Os"),
        s(&c, "Arch"),
        s(&c, "Context"),
    )
}

/// The server part of docker's version template, lines for details the daemon has.
pub fn server_version_text(v: &Value) -> String {
    let name = v.pointer("/Platform/Name").and_then(Value::as_str).unwrap_or("");
    let mut o = if name.is_empty() {
        "\nServer:\n".to_string()
    } else {
        format!("\nServer: {name}\n")
    };
    let components = v
        .get("Components")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &components {
        let cname = s(c, "Name");
        let d = c.get("Details").cloned().unwrap_or(Value::Null);
        o.push_str(&format!(" {cname}:\n"));
        if cname == "Engine" {
            o.push_str(&format!("  Version:\t{}\n", s(c, "Version")));
            let api = s(&d, "ApiVersion");
            let min = s(&d, "MinAPIVersion");
            if !api.is_empty() {
                o.push_str(&format!("  API version:\t{api} (minimum version {min})\n"));
            }
            for (label, key) in [
                ("Go version", "GoVersion"),
                ("Rust version", "RustVersion"),
                ("Git commit", "GitCommit"),
                ("Built", "BuildTime"),
            ] {
                if d.get(key).is_some() {
                    o.push_str(&format!("  {label}:\t{}\n", s(&d, key)));
                }
            }
            if d.get("Os").is_some() {
                o.push_str(&format!("  OS/Arch:\t{}/{}\n", s(&d, "Os"), s(&d, "Arch")));
            }
            if d.get("Experimental").is_some() {
                o.push_str(&format!("  Experimental:\t{}\n", s(&d, "Experimental")));
            }
        } else {
            o.push_str(&format!("  Version:\t{}\n", s(c, "Version")));
            if let Some(m) = d.as_object() {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    o.push_str(&format!("  {k}:\t{}\n", s(&d, k)));
                }
            }
        }
    }
    if components.is_empty() {
        o.push_str(&format!(
            " Engine:\n  Version:\t{}\n  API version:\t{}\n",
            s(v, "Version"),
            s(v, "ApiVersion")
        ));
    }
    o
}

fn run_version(ctx: &Ctx, p: &Parsed) -> Result {
    let format = p.value("format").unwrap_or("");
    if !format.is_empty() {
        let server = ctx.api.get_json("/version");
        let data = json!({"Client": client_version(), "Server": server.as_ref().ok()});
        ctx.print(&user_template(format, &data)?)?;
        return server.map(|_| ()).map_err(Into::into);
    }
    let tw = TabWriter {
        minwidth: 20,
        padding: 1,
    };
    ctx.print(&tw.format(&client_version_text()))?;
    let server = ctx.api.get_json("/version")?;
    ctx.print(&tw.format(&server_version_text(&server)))
}

pub const VERSION_CMD: Def = Def {
    name: "version",
    args: "[OPTIONS]",
    desc: "Show the berth version information",
    aliases: "",
    options: concat!(
        "  -f, --format string   Format output using a custom template:\n",
        format_template_help!()
    ),
    flags: &[value_flag(Some('f'), "format")],
    count: Count::None,
    run: run_version,
};

// ---- system df

const DF_DEFAULT: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const DF_HEADERS: &[(&str, &str)] = &[
    ("Active", "ACTIVE"),
    ("Reclaimable", "RECLAIMABLE"),
    ("Size", "SIZE"),
    ("TotalCount", "TOTAL"),
    ("Type", "TYPE"),
];

fn arr(v: &Value, k: &str) -> Vec<Value> {
    v.get(k).and_then(Value::as_array).cloned().unwrap_or_default()
}

fn i(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn with_percent(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            units::human_size(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        units::human_size(reclaimable as f64)
    }
}

/// docker's disk usage summary rows.
pub fn df_rows(du: &Value) -> Vec<Value> {
    let images = arr(du, "Images");
    let layers = i(du, "LayersSize");
    let mut used = 0;
    for img in images.iter().filter(|m| i(m, "Containers") != 0) {
        let (size, shared) = (
            i(img, "Size"),
            img.get("SharedSize").and_then(Value::as_i64).unwrap_or(-1),
        );
        if size != -1 && shared != -1 {
            used += size - shared;
        }
    }
    let images_row = row(&[
        (
            "Active",
            images
                .iter()
                .filter(|m| i(m, "Containers") > 0)
                .count()
                .to_string(),
        ),
        ("Reclaimable", with_percent(layers - used, layers)),
        ("Size", units::human_size(layers as f64)),
        ("TotalCount", images.len().to_string()),
        ("Type", "Images".into()),
    ]);
    let containers = arr(du, "Containers");
    let active = |c: &Value| {
        let st = s(c, "State");
        st == "running" || st == "paused" || st == "restarting"
    };
    let c_size: i64 = containers.iter().map(|c| i(c, "SizeRw")).sum();
    let c_reclaim: i64 = containers
        .iter()
        .filter(|c| !active(c))
        .map(|c| i(c, "SizeRw"))
        .sum();
    let containers_row = row(&[
        (
            "Active",
            containers.iter().filter(|c| active(c)).count().to_string(),
        ),
        ("Reclaimable", with_percent(c_reclaim, c_size)),
        ("Size", units::human_size(c_size as f64)),
        ("TotalCount", containers.len().to_string()),
        ("Type", "Containers".into()),
    ]);
    let volumes = arr(du, "Volumes");
    let usage = |v: &Value, k: &str| {
        v.pointer(&format!("/UsageData/{k}"))
            .and_then(Value::as_i64)
            .unwrap_or(-1)
    };
    let v_size: i64 = volumes
        .iter()
        .map(|v| usage(v, "Size"))
        .filter(|s| *s != -1)
        .sum();
    let v_reclaim: i64 = volumes
        .iter()
        .filter(|v| usage(v, "RefCount") <= 0)
        .map(|v| usage(v, "Size"))
        .filter(|s| *s != -1)
        .sum();
    let volumes_row = row(&[
        (
            "Active",
            volumes
                .iter()
                .filter(|v| usage(v, "RefCount") > 0)
                .count()
                .to_string(),
        ),
        ("Reclaimable", with_percent(v_reclaim, v_size)),
        ("Size", units::human_size(v_size as f64)),
        ("TotalCount", volumes.len().to_string()),
        ("Type", "Local Volumes".into()),
    ]);
    let cache = arr(du, "BuildCache");
    let flag = |c: &Value, k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    let b_size: i64 = cache
        .iter()
        .filter(|c| !flag(c, "Shared"))
        .map(|c| i(c, "Size"))
        .sum();
    let b_in_use: i64 = cache
        .iter()
        .filter(|c| flag(c, "InUse") && !flag(c, "Shared"))
        .map(|c| i(c, "Size"))
        .sum();
    let cache_row = row(&[
        (
            "Active",
            cache.iter().filter(|c| flag(c, "InUse")).count().to_string(),
        ),
        ("Reclaimable", units::human_size((b_size - b_in_use) as f64)),
        ("Size", units::human_size(b_size as f64)),
        ("TotalCount", cache.len().to_string()),
        ("Type", "Build Cache".into()),
    ]);
    vec![images_row, containers_row, volumes_row, cache_row]
}

fn df_verbose(du: &Value) -> std::result::Result<String, super::Fail> {
    let now = units::now_unix();
    let images = arr(du, "Images");
    // one row per image, named by its first tag (docker's verbose disk usage)
    let rows = images
        .iter()
        .map(|img| {
            let first = strings(img.get("RepoTags").unwrap_or(&Value::Null))
                .into_iter()
                .next()
                .filter(|t| t != "<none>:<none>")
                .and_then(|t| crate::reference::Reference::parse(&t).ok())
                .and_then(|r| r.tag.clone().map(|tag| (r.familiar_name(), tag)));
            let (repo, tag) = first.unwrap_or_else(|| ("<none>".into(), "<none>".into()));
            super::images::image_row(img, &repo, &tag, "", true, now)
        })
        .collect();
    let mut o = String::from("Images space usage:\n\n");
    o.push_str(&format::render(
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        &Rows {
            headers: super::images::IMAGE_HEADERS,
            rows,
        },
    )?);
    o.push_str("\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED   STATUS    NAMES\n");
    o.push_str("\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n");
    let b_size: i64 = arr(du, "BuildCache").iter().map(|c| i(c, "Size")).sum();
    o.push_str(&format!(
        "\nBuild cache usage: {}\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n",
        units::human_size(b_size as f64)
    ));
    Ok(o)
}

fn run_df(ctx: &Ctx, p: &Parsed) -> Result {
    let du = ctx.api.get_json("/system/df")?;
    let format = p.value("format").unwrap_or("");
    if p.bool("verbose") && (format.is_empty() || format == "table") {
        return ctx.print(&df_verbose(&du)?);
    }
    let text = format::render(
        format::resolve(format, DF_DEFAULT),
        &Rows {
            headers: DF_HEADERS,
            rows: df_rows(&du),
        },
    )?;
    ctx.print(&text)
}

pub const DF: Def = Def {
    name: "df",
    args: "[OPTIONS]",
    desc: "Show berth disk usage",
    aliases: "",
    options: concat!(
        "      --format string   Format output using a custom template:\n",
        format_table_help!(),
        format_template_help!(),
        "  -v, --verbose         Show detailed information on space usage\n"
    ),
    flags: &[value_flag(None, "format"), bool_flag(Some('v'), "verbose")],
    count: Count::None,
    run: run_df,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_table() {
        let du = json!({
            "LayersSize": 5_000_000,
            "Images": [
                {"Id": "sha256:1", "Size": 4_000_000, "SharedSize": 0, "Containers": 1, "RepoTags": ["a:1"], "Created": 0},
                {"Id": "sha256:2", "Size": 1_000_000, "SharedSize": 0, "Containers": 0, "RepoTags": ["b:1"], "Created": 0}
            ],
            "Containers": [], "Volumes": [], "BuildCache": []
        });
        let text = format::render(
            DF_DEFAULT,
            &Rows {
                headers: DF_HEADERS,
                rows: df_rows(&du),
            },
        )
        .unwrap();
        assert_eq!(
            text,
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          2         1         5MB       1MB (20%)\n\
             Containers      0         0         0B        0B\n\
             Local Volumes   0         0         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
    }

    #[test]
    fn info_layout() {
        let info = json!({
            "Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0,
            "Images": 2, "ServerVersion": "0.1.0", "Driver": "overlay", "DriverStatus": [["Backing Filesystem", "extfs"]],
            "OSType": "linux", "Architecture": "x86_64", "NCPU": 2, "MemTotal": 25_197_486_080u64,
            "Name": "host", "DockerRootDir": "/var/lib/berth", "Debug": false,
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}},
            "LiveRestoreEnabled": false
        });
        assert_eq!(
            server_info_text(&info),
            " Containers: 0\n  Running: 0\n  Paused: 0\n  Stopped: 0\n Images: 2\n Server Version: 0.1.0\n Storage Driver: overlay\n  Backing Filesystem: extfs\n Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns\n OSType: linux\n Architecture: x86_64\n CPUs: 2\n Total Memory: 23.47GiB\n Name: host\n Docker Root Dir: /var/lib/berth\n Debug Mode: false\n Insecure Registries:\n  127.0.0.0/8\n Live Restore Enabled: false\n"
        );
    }

    #[test]
    fn version_layout() {
        let v = json!({"Platform": {"Name": ""}, "Components": [
            {"Name": "Engine", "Version": "0.1.0", "Details": {"ApiVersion": "1.44", "MinAPIVersion": "1.24", "GitCommit": "abc", "Os": "linux", "Arch": "amd64", "Experimental": "false"}}
        ], "Version": "0.1.0"});
        let tw = TabWriter {
            minwidth: 20,
            padding: 1,
        };
        assert_eq!(
            tw.format(&server_version_text(&v)),
            "\nServer:\n Engine:\n  Version:          0.1.0\n  API version:      1.44 (minimum version 1.24)\n  Git commit:       abc\n  OS/Arch:          linux/amd64\n  Experimental:     false\n"
        );
        assert!(tw
            .format(&client_version_text())
            .starts_with("Client:\n Version:           0.1.0\n API version:       1.44\n"));
    }
}

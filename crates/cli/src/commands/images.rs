//! `images` (`image ls`), `history`, `image inspect` / `inspect`, `tag`, `rmi`, `image prune`.

use super::{fail, Ctx, Def, Fail, Result};
use crate::args::{bool_flag, list_flag, value_flag, Count, Parsed};
use crate::format::{self, row, Rows};
use crate::http::{encode_query, path_escape, Body};
use crate::reference::Reference;
use crate::template::{Options, Template};
use crate::units;
use serde_json::Value;
use std::collections::BTreeMap;

/// docker's `stringid.TruncateID`.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    id.chars().take(12).collect()
}

/// `-f key=value` flags as docker's `filters` JSON: `{"key":{"value":true}}`, keys sorted.
pub fn filters_json(
    values: &[String],
    extra: &[(&str, String)],
) -> std::result::Result<Option<String>, Fail> {
    let mut m: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for v in values {
        let Some((k, val)) = v.split_once('=') else {
            return Err(Fail {
                message: format!(
                    "invalid argument {v:?} for \"-f, --filter\" flag: bad format of filter (expected name=value)"
                ),
                code: 125,
            });
        };
        m.entry(k.trim().to_lowercase())
            .or_default()
            .insert(val.trim().to_string(), true);
    }
    for (k, v) in extra {
        m.entry(k.to_string()).or_default().insert(v.clone(), true);
    }
    if m.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::to_string(&m).expect("filters")))
}

fn num(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn strs(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

const LS_DEFAULT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const LS_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const QUIET: &str = "{{.ID}}";

pub const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("Containers", "CONTAINERS"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("SharedSize", "SHARED SIZE"),
    ("Size", "SIZE"),
    ("Tag", "TAG"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

/// One row of docker's image context, its fields in `MarshalJSON`'s (sorted) order.
pub fn image_row(img: &Value, repo: &str, tag: &str, digest: &str, trunc: bool, now: i64) -> Value {
    let id = img.get("Id").and_then(Value::as_str).unwrap_or("");
    let size = num(img, "Size");
    let shared = img.get("SharedSize").and_then(Value::as_i64).unwrap_or(-1);
    let containers = img.get("Containers").and_then(Value::as_i64).unwrap_or(-1);
    let created = num(img, "Created");
    row(&[
        (
            "Containers",
            if containers == -1 {
                "N/A".into()
            } else {
                containers.to_string()
            },
        ),
        ("CreatedAt", units::go_time_string(created)),
        ("CreatedSince", units::since(created, now)),
        ("Digest", digest.into()),
        ("ID", if trunc { truncate_id(id) } else { id.into() }),
        ("Repository", repo.into()),
        (
            "SharedSize",
            if shared == -1 {
                "N/A".into()
            } else {
                units::human_size(shared as f64)
            },
        ),
        ("Size", units::human_size_precision(size as f64, 3)),
        ("Tag", tag.into()),
        (
            "UniqueSize",
            if size == -1 || shared == -1 {
                "N/A".into()
            } else {
                units::human_size((size - shared) as f64)
            },
        ),
        ("VirtualSize", units::human_size(size as f64)),
    ])
}

/// docker's `imageFormat`: one row per repository:tag (and per digest with `--digests`),
/// `<none>` rows for dangling images.
pub fn image_rows(images: &[Value], digests: bool, trunc: bool, now: i64) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in images {
        let tags = strs(img, "RepoTags");
        let repo_digests = strs(img, "RepoDigests");
        let dangling = (tags.is_empty() && repo_digests.is_empty())
            || (tags == ["<none>:<none>"] && repo_digests == ["<none>@<none>"]);
        if dangling {
            rows.push(image_row(img, "<none>", "<none>", "<none>", trunc, now));
            continue;
        }
        let mut by_repo_tags: Vec<(String, Vec<String>)> = Vec::new();
        for t in &tags {
            let Ok(r) = Reference::parse(t) else { continue };
            let Some(tag) = r.tag.clone() else { continue };
            let name = r.familiar_name();
            match by_repo_tags.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(tag),
                None => by_repo_tags.push((name, vec![tag])),
            }
        }
        let mut by_repo_digests: Vec<(String, Vec<String>)> = Vec::new();
        for d in &repo_digests {
            let Ok(r) = Reference::parse(d) else { continue };
            let Some(dg) = r.digest.clone() else { continue };
            let name = r.familiar_name();
            match by_repo_digests.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(dg),
                None => by_repo_digests.push((name, vec![dg])),
            }
        }
        for (repo, tags) in &by_repo_tags {
            let ds = by_repo_digests
                .iter()
                .position(|(n, _)| n == repo)
                .map(|i| by_repo_digests.remove(i).1)
                .unwrap_or_default();
            let ds = if digests { ds } else { Vec::new() };
            for tag in tags {
                if ds.is_empty() {
                    rows.push(image_row(img, repo, tag, "<none>", trunc, now));
                }
                for d in &ds {
                    rows.push(image_row(img, repo, tag, d, trunc, now));
                }
            }
        }
        for (repo, ds) in &by_repo_digests {
            if digests {
                for d in ds {
                    rows.push(image_row(img, repo, "<none>", d, trunc, now));
                }
            } else {
                rows.push(image_row(img, repo, "<none>", "", trunc, now));
            }
        }
    }
    rows
}

/// docker's `NewImageFormat`.
pub fn image_format(format: &str, quiet: bool, digests: bool) -> String {
    match format {
        "" | "table" if quiet => QUIET.into(),
        "" | "table" if digests => LS_DIGESTS.into(),
        "" | "table" => LS_DEFAULT.into(),
        "json" => format::JSON_FORMAT.into(),
        f if f.starts_with("table") && digests && !f.contains("{{.Digest}}") => f.replacen(
            "{{.Repository}}\t{{.Tag}}",
            "{{.Repository}}\t{{.Tag}}\t{{.Digest}}",
            1,
        ),
        f => f.into(),
    }
}

fn run_ls(ctx: &Ctx, p: &Parsed) -> Result {
    let mut extra = Vec::new();
    if let Some(m) = p.args.first() {
        extra.push(("reference", m.clone()));
    }
    let mut q = Vec::new();
    if p.bool("all") {
        q.push(("all", "1".to_string()));
    }
    if let Some(f) = filters_json(p.values("filter"), &extra)? {
        q.push(("filters", f));
    }
    let query = encode_query(&q);
    let path = if query.is_empty() {
        "/images/json".to_string()
    } else {
        format!("/images/json?{query}")
    };
    let list = ctx.api.get_json(&path)?;
    let images = list.as_array().cloned().unwrap_or_default();
    let fmt = image_format(
        p.value("format").unwrap_or(""),
        p.bool("quiet"),
        p.bool("digests"),
    );
    let rows = image_rows(&images, p.bool("digests"), !p.bool("no-trunc"), units::now_unix());
    let text = format::render(
        &fmt,
        &Rows {
            headers: IMAGE_HEADERS,
            rows,
        },
    )?;
    ctx.print(&text)
}

pub const LS: Def = Def {
    name: "images",
    args: "[OPTIONS] [REPOSITORY[:TAG]]",
    desc: "List images",
    aliases: "berth image ls, berth image list, berth images",
    options: concat!(
        "  -a, --all             Show all images (default hides intermediate images)\n      --digests         Show digests\n  -f, --filter filter   Filter output based on conditions provided\n      --format string   Format output using a custom template:\n",
        format_table_help!(),
        format_template_help!(),
        "      --no-trunc        Don't truncate output\n  -q, --quiet           Only show image IDs\n"
    ),
    flags: &[
        bool_flag(Some('a'), "all"),
        bool_flag(None, "digests"),
        list_flag(Some('f'), "filter"),
        value_flag(None, "format"),
        bool_flag(None, "no-trunc"),
        bool_flag(Some('q'), "quiet"),
    ],
    count: Count::Max(1),
    run: run_ls,
};

// ---- history

const HISTORY_DEFAULT: &str = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const HISTORY_NO_HUMAN: &str = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("Comment", "COMMENT"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("CreatedSince", "CREATED"),
    ("ID", "IMAGE"),
    ("Size", "SIZE"),
];

/// docker's `formatter.Ellipsis` for text without wide characters.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn history_rows(layers: &[Value], trunc: bool, human: bool, now: i64) -> Vec<Value> {
    layers
        .iter()
        .map(|h| {
            let id = h.get("Id").and_then(Value::as_str).unwrap_or("");
            let created = num(h, "Created");
            let created_at = units::rfc3339(created);
            let created_by = h
                .get("CreatedBy")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\t', " ");
            let size = num(h, "Size");
            row(&[
                (
                    "Comment",
                    h.get("Comment").and_then(Value::as_str).unwrap_or("").into(),
                ),
                ("CreatedAt", created_at.clone()),
                (
                    "CreatedBy",
                    if trunc {
                        ellipsis(&created_by, 45)
                    } else {
                        created_by
                    },
                ),
                (
                    "CreatedSince",
                    if !human {
                        created_at
                    } else if created <= 0 {
                        "N/A".into()
                    } else {
                        units::since(created, now)
                    },
                ),
                (
                    "ID",
                    if trunc && id != "<missing>" {
                        truncate_id(id)
                    } else {
                        id.into()
                    },
                ),
                (
                    "Size",
                    if human {
                        units::human_size_precision(size as f64, 3)
                    } else {
                        size.to_string()
                    },
                ),
            ])
        })
        .collect()
}

fn run_history(ctx: &Ctx, p: &Parsed) -> Result {
    let human = !p.is_set("human") || p.bool("human");
    let name = &p.args[0];
    let list = ctx
        .api
        .get_json(&format!("/images/{}/history", path_escape(name)))?;
    let layers = list.as_array().cloned().unwrap_or_default();
    let fmt = match p.value("format").unwrap_or("") {
        "" | "table" if p.bool("quiet") => QUIET.to_string(),
        "" | "table" if !human => HISTORY_NO_HUMAN.to_string(),
        "" | "table" => HISTORY_DEFAULT.to_string(),
        "json" => format::JSON_FORMAT.to_string(),
        f => f.to_string(),
    };
    let rows = history_rows(&layers, !p.bool("no-trunc"), human, units::now_unix());
    let text = format::render(
        &fmt,
        &Rows {
            headers: HISTORY_HEADERS,
            rows,
        },
    )?;
    ctx.print(&text)
}

pub const HISTORY: Def = Def {
    name: "history",
    args: "[OPTIONS] IMAGE",
    desc: "Show the history of an image",
    aliases: "berth image history, berth history",
    options: concat!(
        "      --format string   Format output using a custom template:\n",
        format_table_help!(),
        format_template_help!(),
        "  -H, --human           Print sizes and dates in human readable format\n                        (default true)\n      --no-trunc        Don't truncate output\n  -q, --quiet           Only show image IDs\n"
    ),
    flags: &[
        value_flag(None, "format"),
        bool_flag(Some('H'), "human"),
        bool_flag(None, "no-trunc"),
        bool_flag(Some('q'), "quiet"),
    ],
    count: Count::Exact(1),
    run: run_history,
};

// ---- inspect

/// Go's `json.Indent(dst, src, "", "    ")` over raw JSON: values and key order kept as
/// the daemon wrote them.
pub fn indent_json(raw: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut chars = raw.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(s) = chars.next() {
                    out.push(s);
                    if s == '\\' {
                        if let Some(e) = chars.next() {
                            out.push(e);
                        }
                    } else if s == '"' {
                        break;
                    }
                }
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|x| x.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Runs an inspect: `get` fetches one object's raw JSON, or returns the error text.
pub fn inspect_template(format: &str) -> std::result::Result<Option<Template>, Fail> {
    if format.is_empty() || format == "json" {
        return Ok(None);
    }
    Template::parse(format).map(Some).map_err(|e| Fail {
        message: format!("template parsing error: {e}"),
        code: 64,
    })
}

pub fn inspect_objects(
    ctx: &Ctx,
    names: &[String],
    tmpl: Option<Template>,
    get: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> Result {
    let mut errors = Vec::new();
    let mut raws = Vec::new();
    let mut text = String::new();
    for name in names {
        let raw = match get(name) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match &tmpl {
            None => raws.push(raw),
            Some(t) => {
                let v: Value = match serde_json::from_str(&raw) {
                    Ok(v) => v,
                    Err(e) => {
                        errors.push(format!("unable to read inspect data: {e}"));
                        continue;
                    }
                };
                let opts = Options {
                    strict: true,
                    ..Options::default()
                };
                match t.execute(&v, opts) {
                    Ok(s) => {
                        text.push_str(&s);
                        text.push('\n');
                    }
                    Err(e) => errors.push(format!("template parsing error: {e}")),
                }
            }
        }
    }
    if tmpl.is_none() {
        if raws.is_empty() {
            text = "[]\n".into();
        } else {
            text = indent_json(&format!("[{}]", raws.join(","))) + "\n";
        }
    } else if text.is_empty() {
        text = "\n".into();
    }
    ctx.print(&text)?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

pub fn fetch_image(ctx: &Ctx, name: &str, generic: bool) -> std::result::Result<String, String> {
    fetch_raw(ctx, &format!("/images/{}/json", path_escape(name)), name, generic)
}

/// `GET /networks/{name}` or `/volumes/{name}`.
fn fetch_object(ctx: &Ctx, what: &str, name: &str, generic: bool) -> std::result::Result<String, String> {
    fetch_raw(ctx, &format!("/{what}/{}", path_escape(name)), name, generic)
}

/// The raw JSON of an object; a missing one is the daemon's message, or docker's "No such
/// object" in a lookup of any type.
fn fetch_raw(ctx: &Ctx, path: &str, name: &str, generic: bool) -> std::result::Result<String, String> {
    match ctx.api.request("GET", path, &[], Body::Empty) {
        Ok(r) => r
            .bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string()),
        Err(crate::http::Error::Api { status: 404, .. }) if generic => {
            Err(format!("Error: No such object: {name}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

pub fn check_connect(ctx: &Ctx) -> Result {
    // a daemon that cannot be reached is one error, not one per name
    match ctx.api.send("GET", "/_ping", &[], Body::Empty) {
        Err(e @ crate::http::Error::Connect(..)) => Err(e.into()),
        _ => Ok(()),
    }
}

fn run_image_inspect(ctx: &Ctx, p: &Parsed) -> Result {
    let tmpl = inspect_template(p.value("format").unwrap_or(""))?;
    check_connect(ctx)?;
    inspect_objects(ctx, &p.args, tmpl, &|n| fetch_image(ctx, n, false))
}

fn run_inspect(ctx: &Ctx, p: &Parsed) -> Result {
    let kind = p.value("type").unwrap_or("");
    match kind {
        "" | "image" | "container" | "network" | "volume" => {}
        t @ ("node" | "service" | "task" | "plugin" | "secret" | "config") => {
            return Err(fail(format!(
                "berth has no {t} objects: swarm and plugins are not supported"
            )))
        }
        t => return Err(fail(format!("{t:?} is not a valid value for --type"))),
    }
    let tmpl = inspect_template(p.value("format").unwrap_or(""))?;
    check_connect(ctx)?;
    let size = p.bool("size");
    let get = |n: &str| -> std::result::Result<String, String> {
        use crate::commands::container::inspect::{fetch_container, Found};
        match kind {
            "image" => {
                if size {
                    eprintln!("WARNING: --size ignored for image");
                }
                return fetch_image(ctx, n, false);
            }
            "network" => return fetch_object(ctx, "networks", n, false),
            "volume" => return fetch_object(ctx, "volumes", n, false),
            _ => {}
        }
        match fetch_container(ctx, n, size) {
            Found::Yes(raw) => return Ok(raw),
            Found::Error(e) => return Err(e),
            Found::No(e) if kind == "container" => return Err(e),
            Found::No(_) => {}
        }
        let mut r = fetch_image(ctx, n, true);
        if r.is_ok() && size {
            eprintln!("WARNING: --size ignored for image");
        }
        // docker's order: container, image, network, volume.
        for what in ["networks", "volumes"] {
            if r.as_ref().is_err_and(|e| e.starts_with("Error: No such object")) {
                r = fetch_object(ctx, what, n, true);
            }
        }
        r
    };
    inspect_objects(ctx, &p.args, tmpl, &get)
}

pub const IMAGE_INSPECT: Def = Def {
    name: "inspect",
    args: "[OPTIONS] IMAGE [IMAGE...]",
    desc: "Display detailed information on one or more images",
    aliases: "",
    options: concat!(
        "  -f, --format string   Format output using a custom template:\n",
        format_template_help!()
    ),
    flags: &[value_flag(Some('f'), "format")],
    count: Count::Min(1),
    run: run_image_inspect,
};

pub const INSPECT: Def = Def {
    name: "inspect",
    args: "[OPTIONS] NAME|ID [NAME|ID...]",
    desc: "Return low-level information on berth objects",
    aliases: "",
    options: concat!(
        "  -f, --format string   Format output using a custom template:\n",
        format_template_help!(),
        "  -s, --size            Display total file sizes if the type is container\n      --type string     Only inspect objects of the given type\n"
    ),
    flags: &[
        value_flag(Some('f'), "format"),
        bool_flag(Some('s'), "size"),
        value_flag(None, "type"),
    ],
    count: Count::Min(1),
    run: run_inspect,
};

// ---- tag

fn run_tag(ctx: &Ctx, p: &Parsed) -> Result {
    let (source, target) = (&p.args[0], &p.args[1]);
    let is_id = |s: &str| {
        let h = s.strip_prefix("sha256:").unwrap_or(s);
        h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit())
    };
    if !is_id(source) {
        Reference::parse(source).map_err(|e| {
            fail(format!(
                "Error parsing reference: {source:?} is not a valid repository/tag: {e}"
            ))
        })?;
    }
    let r = Reference::parse(target).map_err(|e| {
        fail(format!(
            "Error parsing reference: {target:?} is not a valid repository/tag: {e}"
        ))
    })?;
    if r.digest.is_some() {
        return Err(fail("refusing to create a tag with a digest reference"));
    }
    let r = r.with_default_tag();
    let mut q = vec![("repo", r.name())];
    if let Some(t) = &r.tag {
        q.push(("tag", t.clone()));
    }
    ctx.api.request(
        "POST",
        &format!("/images/{}/tag?{}", path_escape(source), encode_query(&q)),
        &[],
        Body::Empty,
    )?;
    Ok(())
}

pub const TAG: Def = Def {
    name: "tag",
    args: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    desc: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    aliases: "berth image tag, berth tag",
    options: "",
    flags: &[],
    count: Count::Exact(2),
    run: run_tag,
};

// ---- rmi

fn run_rmi(ctx: &Ctx, p: &Parsed) -> Result {
    let mut q = Vec::new();
    if p.bool("force") {
        q.push(("force", "1".to_string()));
    }
    if p.bool("no-prune") {
        q.push(("noprune", "1".to_string()));
    }
    let query = encode_query(&q);
    let mut errors = Vec::new();
    for name in &p.args {
        let path = if query.is_empty() {
            format!("/images/{}", path_escape(name))
        } else {
            format!("/images/{}?{query}", path_escape(name))
        };
        match ctx
            .api
            .request("DELETE", &path, &[], Body::Empty)
            .and_then(|r| r.json())
        {
            Ok(v) => {
                let mut text = String::new();
                for d in v.as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    let deleted = d.get("Deleted").and_then(Value::as_str).unwrap_or("");
                    if !deleted.is_empty() {
                        text.push_str(&format!("Deleted: {deleted}\n"));
                    } else {
                        let u = d.get("Untagged").and_then(Value::as_str).unwrap_or("");
                        text.push_str(&format!("Untagged: {u}\n"));
                    }
                }
                ctx.print(&text)?;
            }
            Err(e @ crate::http::Error::Connect(..)) => return Err(e.into()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

pub const RMI: Def = Def {
    name: "rmi",
    args: "[OPTIONS] IMAGE [IMAGE...]",
    desc: "Remove one or more images",
    aliases: "berth image rm, berth image remove, berth rmi",
    options: "  -f, --force      Force removal of the image
      --no-prune   Do not delete untagged parents
",
    flags: &[bool_flag(Some('f'), "force"), bool_flag(None, "no-prune")],
    count: Count::Min(1),
    run: run_rmi,
};

// ---- prune

const DANGLING_WARNING: &str =
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?";

/// docker's `PromptForConfirmation`: true when the answer is `y` or `Y`.
pub fn confirm(ctx: &Ctx, message: &str) -> std::result::Result<bool, Fail> {
    ctx.print(&format!("{message} [y/N] "))?;
    let mut line = String::new();
    ctx.stdin.borrow_mut().read_line(&mut line)?;
    Ok(line.trim().eq_ignore_ascii_case("y"))
}

fn run_prune(ctx: &Ctx, p: &Parsed) -> Result {
    let all = p.bool("all");
    let filters =
        filters_json(p.values("filter"), &[("dangling", (!all).to_string())])?.expect("dangling filter");
    if !p.bool("force") && !confirm(ctx, if all { ALL_WARNING } else { DANGLING_WARNING })? {
        return Ok(());
    }
    let report = ctx
        .api
        .request(
            "POST",
            &format!("/images/prune?{}", encode_query(&[("filters", filters)])),
            &[],
            Body::Empty,
        )?
        .json()?;
    let mut text = String::new();
    let deleted = report
        .get("ImagesDeleted")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        text.push_str("Deleted Images:\n");
        for d in &deleted {
            let u = d.get("Untagged").and_then(Value::as_str).unwrap_or("");
            if !u.is_empty() {
                text.push_str(&format!("untagged: {u}\n"));
            } else {
                let del = d.get("Deleted").and_then(Value::as_str).unwrap_or("");
                text.push_str(&format!("deleted: {del}\n"));
            }
        }
        text.push('\n');
    }
    let space = report.get("SpaceReclaimed").and_then(Value::as_u64).unwrap_or(0);
    print_reclaimed(ctx, text, space)
}

/// The `Deleted X:` block of a prune's report: the names under `key`, then an empty line
/// (nothing when none was deleted); and whether any was.
pub fn deleted_block(report: &Value, key: &str, heading: &str) -> (String, bool) {
    let deleted: Vec<&str> = report
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if deleted.is_empty() {
        return (String::new(), false);
    }
    let mut text = format!("{heading}\n");
    for id in deleted {
        text.push_str(&format!("{id}\n"));
    }
    text.push('\n');
    (text, true)
}

/// A prune's report: what was deleted, then `Total reclaimed space: ...`.
pub fn print_reclaimed(ctx: &Ctx, mut text: String, space: u64) -> Result {
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        units::human_size(space as f64)
    ));
    ctx.print(&text)
}

pub const PRUNE: Def = Def {
    name: "prune",
    args: "[OPTIONS]",
    desc: "Remove unused images",
    aliases: "",
    options: "  -a, --all             Remove all unused images, not just dangling ones
      --filter filter   Provide filter values (e.g. \"until=<timestamp>\")
  -f, --force           Do not prompt for confirmation
",
    flags: &[
        bool_flag(Some('a'), "all"),
        list_flag(None, "filter"),
        bool_flag(Some('f'), "force"),
    ],
    count: Count::None,
    run: run_prune,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testutil::{self, json_response, Server};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn images_fixture() -> Vec<Value> {
        let id1 = format!("sha256:3f57d9401f8d{}", "0".repeat(52));
        let id2 = format!("sha256:aaaaaaaaaaaa{}", "1".repeat(52));
        let id3 = format!("sha256:bbbbbbbbbbbb{}", "2".repeat(52));
        vec![
            json!({"Id": id1, "Created": NOW - 14 * 86400, "Size": 4_261_550, "SharedSize": -1, "Containers": -1,
                   "RepoTags": ["busybox:latest", "127.0.0.1:5055/busybox:latest", "busybox:1.36"],
                   "RepoDigests": [format!("busybox@sha256:{}", "d".repeat(64))]}),
            json!({"Id": id2, "Created": NOW - 7200, "Size": 1850, "SharedSize": -1, "Containers": -1,
                   "RepoTags": [], "RepoDigests": []}),
            json!({"Id": id3, "Created": NOW - 59, "Size": 0, "SharedSize": -1, "Containers": -1,
                   "RepoTags": ["<none>:<none>"], "RepoDigests": ["<none>@<none>"]}),
        ]
    }

    fn render(fmt: &str, digests: bool, trunc: bool) -> String {
        let rows = image_rows(&images_fixture(), digests, trunc, NOW);
        format::render(
            &image_format(fmt, false, digests),
            &Rows {
                headers: IMAGE_HEADERS,
                rows,
            },
        )
        .unwrap()
    }

    #[test]
    fn images_table() {
        assert_eq!(
            render("", false, true),
            "REPOSITORY               TAG       IMAGE ID       CREATED          SIZE\n\
             busybox                  latest    3f57d9401f8d   2 weeks ago      4.26MB\n\
             busybox                  1.36      3f57d9401f8d   2 weeks ago      4.26MB\n\
             127.0.0.1:5055/busybox   latest    3f57d9401f8d   2 weeks ago      4.26MB\n\
             <none>                   <none>    aaaaaaaaaaaa   2 hours ago      1.85kB\n\
             <none>                   <none>    bbbbbbbbbbbb   59 seconds ago   0B\n"
        );
        let d = render("", true, true);
        assert!(d.starts_with("REPOSITORY               TAG       DIGEST"), "{d}");
        assert!(d.contains(&format!(
            "busybox                  latest    sha256:{}",
            "d".repeat(64)
        )));
        let q = format::render(
            &image_format("", true, false),
            &Rows {
                headers: IMAGE_HEADERS,
                rows: image_rows(&images_fixture(), false, false, NOW),
            },
        )
        .unwrap();
        assert_eq!(
            q.lines().next().unwrap(),
            format!("sha256:3f57d9401f8d{}", "0".repeat(52))
        );
        let j = render("json", false, true);
        let first: Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
        assert_eq!(first["Repository"], "busybox");
        assert_eq!(first["Containers"], "N/A");
        assert_eq!(first["CreatedAt"], "2023-10-31 22:13:20 +0000 UTC");
        assert!(j
            .lines()
            .nth(3)
            .unwrap()
            .contains(r#""Digest":"\u003cnone\u003e""#));
        assert_eq!(
            render("{{.Repository}}:{{.Tag}}", false, true)
                .lines()
                .next()
                .unwrap(),
            "busybox:latest"
        );
    }

    #[test]
    fn history_table() {
        let layers = vec![
            json!({"Id": format!("sha256:{}", "c".repeat(64)), "Created": NOW - 3 * 86400, "CreatedBy": "/bin/sh -c #(nop)  CMD [\"sh\"]", "Size": 0, "Comment": ""}),
            json!({"Id": "<missing>", "Created": NOW - 3 * 86400, "CreatedBy": "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in / ", "Size": 4_261_550, "Comment": "imported"}),
        ];
        let text = format::render(
            HISTORY_DEFAULT,
            &Rows {
                headers: HISTORY_HEADERS,
                rows: history_rows(&layers, true, true, NOW),
            },
        )
        .unwrap();
        assert_eq!(
            text,
            "IMAGE          CREATED      CREATED BY                                      SIZE      COMMENT\n\
             cccccccccccc   3 days ago   /bin/sh -c #(nop)  CMD [\"sh\"]                   0B        \n\
             <missing>      3 days ago   /bin/sh -c #(nop) ADD file:0123456789abcdef0…   4.26MB    imported\n"
        );
        let raw = history_rows(&layers, false, false, NOW);
        assert_eq!(raw[1]["Size"], "4261550");
        assert_eq!(raw[1]["CreatedSince"], "2023-11-11T22:13:20Z");
    }

    #[test]
    fn indents_like_go() {
        assert_eq!(
            indent_json(r#"[{"Id":"x","A":[],"B":{},"C":[1,{"d":"a,b:[c]\"}"}]}]"#),
            "[\n    {\n        \"Id\": \"x\",\n        \"A\": [],\n        \"B\": {},\n        \"C\": [\n            1,\n            {\n                \"d\": \"a,b:[c]\\\"}\"\n            }\n        ]\n    }\n]"
        );
    }

    #[test]
    fn filters() {
        assert_eq!(
            filters_json(
                &["dangling=true".into(), "label=a=b".into()],
                &[("reference", "busybox".into())]
            )
            .unwrap()
            .unwrap(),
            r#"{"dangling":{"true":true},"label":{"a=b":true},"reference":{"busybox":true}}"#
        );
        assert_eq!(filters_json(&["x".into()], &[]).unwrap_err().code, 125);
        assert!(filters_json(&[], &[]).unwrap().is_none());
    }

    #[test]
    fn ls_against_a_server() {
        let body = serde_json::to_string(&images_fixture()).unwrap();
        let server = Server::start(vec![json_response(200, &body)]);
        let (ctx, out) = testutil::ctx(&server, "", testutil::temp_path("cfg"));
        testutil::run(&LS, &ctx, &["-a", "--filter", "dangling=false", "busybox", "-q"]).unwrap();
        let reqs = server.finish();
        assert_eq!(reqs[0].method, "GET");
        assert_eq!(
            reqs[0].target,
            "/v1.44/images/json?all=1&filters=%7B%22dangling%22%3A%7B%22false%22%3Atrue%7D%2C%22reference%22%3A%7B%22busybox%22%3Atrue%7D%7D"
        );
        assert_eq!(out.text().lines().next().unwrap(), "3f57d9401f8d");
    }

    #[test]
    fn inspect_and_errors() {
        let server = Server::start(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK".into(),
            json_response(200, r#"{"Id":"sha256:1","RepoTags":["a:latest"],"Size":5}"#),
            json_response(404, r#"{"message":"No such image: nope:latest"}"#),
        ]);
        let (ctx, out) = testutil::ctx(&server, "", testutil::temp_path("cfg"));
        let err = testutil::run(&IMAGE_INSPECT, &ctx, &["a", "nope"]).unwrap_err();
        assert_eq!(
            err.message,
            "Error response from daemon: No such image: nope:latest"
        );
        assert_eq!(err.code, 1);
        assert_eq!(
            out.text(),
            "[\n    {\n        \"Id\": \"sha256:1\",\n        \"RepoTags\": [\n            \"a:latest\"\n        ],\n        \"Size\": 5\n    }\n]\n"
        );
        let reqs = server.finish();
        assert_eq!(reqs[1].target, "/v1.44/images/a/json");

        let server = Server::start(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK".into(),
            json_response(404, r#"{"message":"No such container: nope"}"#),
            json_response(404, r#"{"message":"No such image: nope:latest"}"#),
            json_response(404, r#"{"message":"network nope not found"}"#),
            json_response(404, r#"{"message":"get nope: no such volume"}"#),
        ]);
        let (ctx, out) = testutil::ctx(&server, "", testutil::temp_path("cfg"));
        let err = testutil::run(&INSPECT, &ctx, &["-f", "{{.Id}}", "nope"]).unwrap_err();
        assert_eq!(err.message, "Error: No such object: nope");
        assert_eq!(out.text(), "\n");
        let reqs = server.finish();
        assert_eq!(reqs[3].target, "/v1.44/networks/nope");
        assert_eq!(reqs[4].target, "/v1.44/volumes/nope");

        // A network found by the generic lookup, and --type network.
        let server = Server::start(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK".into(),
            json_response(404, r#"{"message":"No such container: web"}"#),
            json_response(404, r#"{"message":"No such image: web:latest"}"#),
            json_response(200, r#"{"Name":"web","Driver":"bridge"}"#),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK".into(),
            json_response(200, r#"{"Name":"web","Driver":"bridge"}"#),
        ]);
        let (ctx, out) = testutil::ctx(&server, "", testutil::temp_path("cfg"));
        testutil::run(&INSPECT, &ctx, &["-f", "{{.Driver}}", "web"]).unwrap();
        testutil::run(&INSPECT, &ctx, &["--type", "network", "-f", "{{.Name}}", "web"]).unwrap();
        assert_eq!(out.text(), "bridge\nweb\n");
        let reqs = server.finish();
        assert_eq!(reqs[5].target, "/v1.44/networks/web");

        let server = Server::start(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK".into(),
            json_response(404, r#"{"message":"No such container: a"}"#),
            json_response(
                200,
                r#"{"Id":"sha256:1","RepoTags":["a:latest","b:1"],"Config":{"Env":["A=1"]},"Size":4261550}"#,
            ),
        ]);
        let (ctx, out) = testutil::ctx(&server, "", testutil::temp_path("cfg"));
        testutil::run(
            &INSPECT,
            &ctx,
            &["-f", "{{.Id}} {{.RepoTags}} {{json .Config}} {{.Size}}", "a"],
        )
        .unwrap();
        assert_eq!(
            out.text(),
            "sha256:1 [a:latest b:1] {\"Env\":[\"A=1\"]} 4261550\n"
        );
        server.finish();
        let (ctx, _) = testutil::ctx(&Server::start(vec![]), "", testutil::temp_path("cfg"));
        let err = testutil::run(&INSPECT, &ctx, &["-f", "{{bogus .}}", "a"]).unwrap_err();
        assert_eq!(err.code, 64);
    }

    #[test]
    fn tag_rmi_prune() {
        let server = Server::start(vec![
            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".into(),
            json_response(200, r#"[{"Untagged":"busybox:latest"},{"Deleted":"sha256:abc"}]"#),
            json_response(
                409,
                r#"{"message":"conflict: unable to remove repository reference"}"#,
            ),
            json_response(
                200,
                r#"{"ImagesDeleted":[{"Deleted":"sha256:abc"}],"SpaceReclaimed":1240000}"#,
            ),
        ]);
        let (ctx, out) = testutil::ctx(&server, "y\n", testutil::temp_path("cfg"));
        testutil::run(&TAG, &ctx, &["busybox", "127.0.0.1:5055/busybox"]).unwrap();
        let err = testutil::run(&RMI, &ctx, &["-f", "busybox", "other"]).unwrap_err();
        assert_eq!(
            err.message,
            "Error response from daemon: conflict: unable to remove repository reference"
        );
        testutil::run(&PRUNE, &ctx, &[]).unwrap();
        let reqs = server.finish();
        assert_eq!(
            reqs[0].target,
            "/v1.44/images/busybox/tag?repo=127.0.0.1%3A5055%2Fbusybox&tag=latest"
        );
        assert_eq!(reqs[1].method, "DELETE");
        assert_eq!(reqs[1].target, "/v1.44/images/busybox?force=1");
        assert_eq!(
            reqs[3].target,
            "/v1.44/images/prune?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D"
        );
        assert_eq!(
            out.text(),
            "Untagged: busybox:latest\nDeleted: sha256:abc\n\
             WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] \
             Deleted Images:\ndeleted: sha256:abc\n\nTotal reclaimed space: 1.24MB\n"
        );
        // a refusal sends nothing
        let server = Server::start(vec![]);
        let (ctx, out) = testutil::ctx(&server, "n\n", testutil::temp_path("cfg"));
        testutil::run(&PRUNE, &ctx, &["-a"]).unwrap();
        assert!(out
            .text()
            .starts_with("WARNING! This will remove all images without"));
        assert!(server.finish().is_empty());
    }
}

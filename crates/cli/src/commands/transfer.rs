//! `pull`, `push` (with `X-Registry-Auth` from the config file), `save`, `load`, `import`.

use super::{fail, Ctx, Def, Fail, Result};
use crate::args::{bool_flag, list_flag, value_flag, Count, Parsed};
use crate::config::ConfigFile;
use crate::http::{encode_query, path_escape, Body, Response};
use crate::jsonmessage;
use crate::reference::Reference;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The `X-Registry-Auth` value for a reference's registry (`e30=` without credentials).
pub fn registry_auth(ctx: &Ctx, r: &Reference) -> std::result::Result<String, Fail> {
    let config = ConfigFile::load(&ctx.config_dir)?;
    Ok(config.get_auth(&r.auth_key())?.encode())
}

/// Renders a response's JSON message stream on stdout (or nowhere when quiet).
pub fn show_stream(ctx: &Ctx, resp: Response, quiet: bool) -> Result {
    let mut aux = |_: &serde_json::Value| {};
    if quiet {
        jsonmessage::display_stream(resp.body, &mut io::sink(), ctx.target(), &mut aux)?;
    } else {
        let mut out = ctx.stdout.borrow_mut();
        jsonmessage::display_stream(resp.body, &mut *out, ctx.target(), &mut aux)?;
    }
    Ok(())
}

fn parse_ref(s: &str) -> std::result::Result<Reference, Fail> {
    Reference::parse(s).map_err(|e| fail(e.to_string()))
}

/// docker's name checks and `Using default tag`, shared by pull and push.
fn prepare(ctx: &Ctx, name: &str, all: bool, quiet: bool) -> std::result::Result<Reference, Fail> {
    let r = parse_ref(name)?;
    if all && !r.is_name_only() {
        return Err(fail("tag can't be used with --all-tags/-a"));
    }
    if !all && r.is_name_only() {
        if !quiet {
            ctx.print("Using default tag: latest\n")?;
        }
        return Ok(r.with_default_tag());
    }
    Ok(r)
}

fn run_pull(ctx: &Ctx, p: &Parsed) -> Result {
    let (all, quiet) = (p.bool("all-tags"), p.bool("quiet"));
    let r = prepare(ctx, &p.args[0], all, quiet)?;
    let mut q = vec![("fromImage", r.familiar_name())];
    if !all {
        let tag = r
            .digest
            .clone()
            .or_else(|| r.tag.clone())
            .unwrap_or_else(|| "latest".into());
        q.push(("tag", tag));
    }
    if let Some(pl) = p.value("platform").filter(|p| !p.is_empty()) {
        q.push(("platform", pl.to_lowercase()));
    }
    let auth = registry_auth(ctx, &r)?;
    let resp = ctx.api.request(
        "POST",
        &format!("/images/create?{}", encode_query(&q)),
        &[("X-Registry-Auth", auth)],
        Body::Empty,
    )?;
    show_stream(ctx, resp, quiet)?;
    ctx.print(&format!("{r}\n"))
}

pub const PULL: Def = Def {
    name: "pull",
    args: "[OPTIONS] NAME[:TAG|@DIGEST]",
    desc: "Download an image from a registry",
    aliases: "berth image pull, berth pull",
    options: "  -a, --all-tags                Download all tagged images in the repository
      --disable-content-trust   Skip image verification (default true)
      --platform string         Set platform if server is multi-platform
                                capable
  -q, --quiet                   Suppress verbose output
",
    flags: &[
        bool_flag(Some('a'), "all-tags"),
        bool_flag(None, "disable-content-trust"),
        value_flag(None, "platform"),
        bool_flag(Some('q'), "quiet"),
    ],
    count: Count::Exact(1),
    run: run_pull,
};

fn run_push(ctx: &Ctx, p: &Parsed) -> Result {
    let (all, quiet) = (p.bool("all-tags"), p.bool("quiet"));
    let r = prepare(ctx, &p.args[0], all, quiet)?;
    let mut q = Vec::new();
    if let (false, Some(t)) = (all, &r.tag) {
        q.push(("tag", t.clone()));
    }
    let auth = registry_auth(ctx, &r)?;
    let path = format!("/images/{}/push", path_escape(&r.familiar_name()));
    let path = if q.is_empty() {
        path
    } else {
        format!("{path}?{}", encode_query(&q))
    };
    let resp = ctx
        .api
        .request("POST", &path, &[("X-Registry-Auth", auth)], Body::Empty)?;
    show_stream(ctx, resp, quiet)?;
    if quiet {
        ctx.print(&format!("{r}\n"))?;
    }
    Ok(())
}

pub const PUSH: Def = Def {
    name: "push",
    args: "[OPTIONS] NAME[:TAG]",
    desc: "Upload an image to a registry",
    aliases: "berth image push, berth push",
    options: "  -a, --all-tags                Push all tags of an image to the repository
      --disable-content-trust   Skip image signing (default true)
  -q, --quiet                   Suppress verbose output
",
    flags: &[
        bool_flag(Some('a'), "all-tags"),
        bool_flag(None, "disable-content-trust"),
        bool_flag(Some('q'), "quiet"),
    ],
    count: Count::Exact(1),
    run: run_push,
};

// ---- save

/// docker's `CopyToFile`: a temporary file next to the target, renamed over it at the end.
pub fn copy_to_file(path: &Path, mut from: impl Read) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".berth_temp_{name}.{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        io::copy(&mut from, &mut f)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// docker's `ValidateOutputPath` for `-o`: the directory must exist (`what` starts the
/// message: `failed to save image`).
pub fn check_output_path(ctx: &Ctx, output: &str, what: &str) -> Result {
    if output.is_empty() && ctx.out_tty {
        return Err(fail(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    if output.is_empty() {
        return Ok(());
    }
    let dir = Path::new(output).parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = dir {
        match fs::metadata(d) {
            Err(e) => {
                return Err(fail(format!(
                    "{what}: invalid output path: stat {}: {}",
                    d.display(),
                    os_error(&e)
                )))
            }
            Ok(m) if !m.is_dir() => {
                return Err(fail(format!(
                    "{what}: invalid output path: stat {}: not a directory",
                    d.display()
                )))
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

fn run_save(ctx: &Ctx, p: &Parsed) -> Result {
    let output = p.value("output").unwrap_or("");
    check_output_path(ctx, output, "failed to save image")?;
    let q: Vec<(&str, String)> = p.args.iter().map(|n| ("names", n.clone())).collect();
    let resp = ctx.api.request(
        "GET",
        &format!("/images/get?{}", encode_query(&q)),
        &[],
        Body::Empty,
    )?;
    write_output(ctx, output, resp.body)
}

/// A tar stream to stdout, or to the `-o` file (written aside, then renamed over it).
pub fn write_output(ctx: &Ctx, output: &str, mut body: impl Read) -> Result {
    if output.is_empty() {
        let mut out = ctx.stdout.borrow_mut();
        io::copy(&mut body, &mut *out)?;
        out.flush()?;
        Ok(())
    } else {
        copy_to_file(Path::new(output), body).map_err(|e| fail(e.to_string()))
    }
}

pub const SAVE: Def = Def {
    name: "save",
    args: "[OPTIONS] IMAGE [IMAGE...]",
    desc: "Save one or more images to a tar archive (streamed to STDOUT by default)",
    aliases: "berth image save, berth save",
    options: "  -o, --output string   Write to a file, instead of STDOUT
",
    flags: &[value_flag(Some('o'), "output")],
    count: Count::Min(1),
    run: run_save,
};

// ---- load and import

/// Stdin as a request body: the test context's canned stdin, else the process's.
struct StdinBody<'a>(&'a Ctx);

impl Read for StdinBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.stdin.borrow_mut().read(buf)
    }
}

fn open_input(path: &str) -> std::result::Result<(fs::File, u64), Fail> {
    let f = fs::File::open(path).map_err(|e| fail(format!("open {path}: {}", os_error(&e))))?;
    let len = f.metadata()?.len();
    Ok((f, len))
}

/// Go's wording of the common open errors.
pub fn os_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn run_load(ctx: &Ctx, p: &Parsed) -> Result {
    let input = p.value("input").unwrap_or("");
    let body = if input.is_empty() {
        if ctx.in_tty {
            return Err(fail("requested load from stdin, but stdin is empty"));
        }
        Body::Stream {
            reader: Box::new(StdinBody(ctx)),
            content_type: "application/x-tar",
            length: None,
        }
    } else {
        let (f, len) = open_input(input)?;
        Body::Stream {
            reader: Box::new(f),
            content_type: "application/x-tar",
            length: Some(len),
        }
    };
    let quiet = p.bool("quiet") || !ctx.out_tty;
    let q = [("quiet", if quiet { "1" } else { "0" }.to_string())];
    let resp = ctx
        .api
        .request("POST", &format!("/images/load?{}", encode_query(&q)), &[], body)?;
    if resp
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return show_stream(ctx, resp, false);
    }
    let mut out = ctx.stdout.borrow_mut();
    let mut b = resp.body;
    io::copy(&mut b, &mut *out)?;
    Ok(())
}

pub const LOAD: Def = Def {
    name: "load",
    args: "[OPTIONS]",
    desc: "Load an image from a tar archive or STDIN",
    aliases: "berth image load, berth load",
    options: "  -i, --input string   Read from tar archive file, instead of STDIN
  -q, --quiet          Suppress the load output
",
    flags: &[value_flag(Some('i'), "input"), bool_flag(Some('q'), "quiet")],
    count: Count::None,
    run: run_load,
};

fn run_import(ctx: &Ctx, p: &Parsed) -> Result {
    let source = p.args[0].as_str();
    let repo = p.args.get(1).map(String::as_str).unwrap_or("");
    if !repo.is_empty() {
        parse_ref(repo)?;
    }
    let (from_src, body) = if source == "-" {
        (
            "-".to_string(),
            Body::Stream {
                reader: Box::new(StdinBody(ctx)),
                content_type: "application/x-tar",
                length: None,
            },
        )
    } else if source.starts_with("http://") || source.starts_with("https://") {
        (source.to_string(), Body::Empty)
    } else {
        let (f, len) = open_input(source)?;
        (
            "-".to_string(),
            Body::Stream {
                reader: Box::new(f),
                content_type: "application/x-tar",
                length: Some(len),
            },
        )
    };
    let mut q = vec![("fromSrc", from_src)];
    if !repo.is_empty() {
        q.push(("repo", repo.to_string()));
    }
    if let Some(m) = p.value("message").filter(|m| !m.is_empty()) {
        q.push(("message", m.to_string()));
    }
    for c in p.values("change") {
        q.push(("changes", c.to_string()));
    }
    if let Some(pl) = p.value("platform").filter(|p| !p.is_empty()) {
        q.push(("platform", pl.to_lowercase()));
    }
    let resp = ctx
        .api
        .request("POST", &format!("/images/create?{}", encode_query(&q)), &[], body)?;
    show_stream(ctx, resp, false)
}

pub const IMPORT: Def = Def {
    name: "import",
    args: "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    desc: "Import the contents from a tarball to create a filesystem image",
    aliases: "berth image import, berth import",
    options: "  -c, --change list       Apply Dockerfile instruction to the created image
  -m, --message string    Set commit message for imported image
      --platform string   Set platform if server is multi-platform capable
",
    flags: &[
        list_flag(Some('c'), "change"),
        value_flag(Some('m'), "message"),
        value_flag(None, "platform"),
    ],
    // docker checks only the minimum; a third argument is ignored
    count: Count::Min(1),
    run: run_import,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testutil::{self, chunked_response, json_response, Server};
    use crate::config::{base64_decode, AuthConfig};

    #[test]
    fn pull_sends_auth_and_renders() {
        let cfg = testutil::temp_path("cfg");
        let mut c = ConfigFile::load(&cfg).unwrap();
        c.store_auth(&AuthConfig {
            username: "u".into(),
            password: "p".into(),
            server_address: "127.0.0.1:5055".into(),
            ..AuthConfig::default()
        })
        .unwrap();
        let server = Server::start(vec![
            chunked_response(
                200,
                &[
                    "{\"status\":\"Pulling from busybox\",\"id\":\"latest\"}\r\n",
                    "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"abc\"}\r\n{\"status\":\"Downloading\",",
                    "\"progressDetail\":{\"current\":5,\"total\":10},\"id\":\"abc\"}\r\n",
                    "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"abc\"}\r\n{\"status\":\"Digest: sha256:1\"}\r\n{\"status\":\"Status: Downloaded newer image for 127.0.0.1:5055/busybox:latest\"}\r\n",
                ],
            ),
            chunked_response(200, &["{\"status\":\"x\"}\n"]),
            chunked_response(200, &["{\"errorDetail\":{\"message\":\"manifest unknown\"},\"error\":\"manifest unknown\"}\n"]),
            json_response(404, r#"{"message":"pull access denied for nope, repository does not exist"}"#),
        ]);
        let (ctx, out) = testutil::ctx(&server, "", cfg.clone());
        testutil::run(&PULL, &ctx, &["127.0.0.1:5055/busybox"]).unwrap();
        assert_eq!(
            out.text(),
            "Using default tag: latest\nlatest: Pulling from busybox\nabc: Pulling fs layer\nabc: Pull complete\nDigest: sha256:1\n\
             Status: Downloaded newer image for 127.0.0.1:5055/busybox:latest\n127.0.0.1:5055/busybox:latest\n"
        );
        let (ctx2, out2) = testutil::ctx(&server, "", cfg.clone());
        testutil::run(&PULL, &ctx2, &["-q", "--platform", "Linux/AMD64", "busybox:1.36"]).unwrap();
        assert_eq!(out2.text(), "docker.io/library/busybox:1.36\n");
        let err = testutil::run(&PULL, &ctx2, &["busybox"]).unwrap_err();
        assert_eq!(err.message, "manifest unknown");
        let err = testutil::run(&PULL, &ctx2, &["nope"]).unwrap_err();
        assert_eq!(
            err.message,
            "Error response from daemon: pull access denied for nope, repository does not exist"
        );
        let reqs = server.finish();
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(
            reqs[0].target,
            "/v1.44/images/create?fromImage=127.0.0.1%3A5055%2Fbusybox&tag=latest"
        );
        let auth = base64_decode(reqs[0].header("X-Registry-Auth").unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(auth).unwrap(),
            r#"{"username":"u","password":"p","serveraddress":"127.0.0.1:5055"}"#
        );
        assert_eq!(
            reqs[1].target,
            "/v1.44/images/create?fromImage=busybox&platform=linux%2Famd64&tag=1.36"
        );
        assert_eq!(reqs[1].header("X-Registry-Auth"), Some("e30="));
        let _ = fs::remove_dir_all(&cfg);
    }

    #[test]
    fn push_and_usage_checks() {
        let server = Server::start(vec![chunked_response(
            200,
            &["{\"status\":\"The push refers to repository [127.0.0.1:5055/busybox]\"}\n{\"status\":\"Pushed\",\"progressDetail\":{},\"id\":\"abc\"}\n{\"aux\":{\"Tag\":\"v1\"}}\n"],
        )]);
        let (ctx, out) = testutil::ctx(&server, "", testutil::temp_path("cfg"));
        testutil::run(&PUSH, &ctx, &["127.0.0.1:5055/busybox:v1"]).unwrap();
        assert_eq!(
            out.text(),
            "The push refers to repository [127.0.0.1:5055/busybox]\nabc: Pushed\n"
        );
        let err = testutil::run(&PUSH, &ctx, &["-a", "busybox:v1"]).unwrap_err();
        assert_eq!(err.message, "tag can't be used with --all-tags/-a");
        let err = testutil::run(&PULL, &ctx, &["Busybox"]).unwrap_err();
        assert!(err.message.contains("must be lowercase"));
        let reqs = server.finish();
        assert_eq!(reqs[0].target, "/v1.44/images/127.0.0.1:5055/busybox/push?tag=v1");
    }

    #[test]
    fn save_load_import() {
        let dir = testutil::temp_path("io");
        fs::create_dir_all(&dir).unwrap();
        let tar = dir.join("in.tar");
        fs::write(&tar, b"TARDATA").unwrap();
        let server = Server::start(vec![
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".into(),
            chunked_response(200, &["{\"stream\":\"Loaded image: busybox:latest\\n\"}\n"]),
            chunked_response(200, &["{\"stream\":\"Loaded image: x:1\\n\"}\n"]),
            chunked_response(200, &["{\"status\":\"sha256:feed\"}\n"]),
            chunked_response(200, &["{\"status\":\"sha256:beef\"}\n"]),
        ]);
        let (ctx, out) = testutil::ctx(&server, "STDINTAR", dir.clone());
        let saved = dir.join("out.tar");
        testutil::run(&SAVE, &ctx, &["-o", saved.to_str().unwrap(), "busybox", "x:1"]).unwrap();
        assert_eq!(fs::read(&saved).unwrap(), b"abcde");
        testutil::run(&LOAD, &ctx, &["-i", tar.to_str().unwrap()]).unwrap();
        testutil::run(&LOAD, &ctx, &[]).unwrap();
        testutil::run(
            &IMPORT,
            &ctx,
            &["-m", "hi there", tar.to_str().unwrap(), "img:v1"],
        )
        .unwrap();
        testutil::run(&IMPORT, &ctx, &["http://127.0.0.1:1/x.tar"]).unwrap();
        assert_eq!(
            out.text(),
            "Loaded image: busybox:latest\nLoaded image: x:1\nsha256:feed\nsha256:beef\n"
        );
        let err = testutil::run(&LOAD, &ctx, &["-i", "/nonexistent.tar"]).unwrap_err();
        assert_eq!(err.message, "open /nonexistent.tar: no such file or directory");
        let reqs = server.finish();
        assert_eq!(reqs[0].target, "/v1.44/images/get?names=busybox&names=x%3A1");
        assert_eq!(reqs[1].target, "/v1.44/images/load?quiet=1");
        assert_eq!(reqs[1].body, b"TARDATA");
        assert_eq!(reqs[1].header("Content-Type"), Some("application/x-tar"));
        assert_eq!(reqs[2].body, b"STDINTAR");
        assert_eq!(reqs[2].header("Transfer-Encoding"), Some("chunked"));
        assert_eq!(
            reqs[3].target,
            "/v1.44/images/create?fromSrc=-&message=hi+there&repo=img%3Av1"
        );
        assert_eq!(reqs[3].body, b"TARDATA");
        assert_eq!(
            reqs[4].target,
            "/v1.44/images/create?fromSrc=http%3A%2F%2F127.0.0.1%3A1%2Fx.tar"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

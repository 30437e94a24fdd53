//! `login` (POST /auth, then the credentials into config.json) and `logout`.

use super::{fail, Ctx, Def, Fail, Result};
use crate::args::{bool_flag, value_flag, Count, Parsed};
use crate::config::{AuthConfig, ConfigFile};
use crate::http::{Body, Error};
use crate::reference::{convert_to_hostname, INDEX_SERVER};
use serde_json::Value;
use std::io::{BufRead, Read};

fn read_line(ctx: &Ctx) -> std::result::Result<String, Fail> {
    let mut line = String::new();
    ctx.stdin.borrow_mut().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Reads a password from the terminal with echo turned off.
fn read_password(ctx: &Ctx) -> std::result::Result<String, Fail> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = if ctx.in_tty { tcgetattr(&stdin).ok() } else { None };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let line = read_line(ctx);
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
    }
    line
}

/// docker's `PromptUserForCredentials`.
fn prompt(
    ctx: &Ctx,
    user: &str,
    password: &str,
    default_user: &str,
) -> std::result::Result<(String, String), Fail> {
    if (user.is_empty() || password.is_empty()) && !ctx.in_tty {
        return Err(fail(
            "Error: Cannot perform an interactive login from a non TTY device",
        ));
    }
    let mut user = user.trim().to_string();
    if user.is_empty() {
        if default_user.is_empty() {
            ctx.print("Username: ")?;
        } else {
            ctx.print(&format!("Username ({default_user}): "))?;
        }
        user = read_line(ctx)?.trim().to_string();
        if user.is_empty() {
            user = default_user.to_string();
        }
        if user.is_empty() {
            return Err(fail("Error: Non-null Username Required"));
        }
    }
    let mut password = password.to_string();
    if password.is_empty() {
        ctx.print("Password: ")?;
        password = read_password(ctx)?;
        ctx.print("\n")?;
        if password.is_empty() {
            return Err(fail("Error: Password Required"));
        }
    }
    Ok((user, password))
}

/// POST /auth; on success the credentials (or the identity token) are stored.
fn login_and_store(
    ctx: &Ctx,
    config: &mut ConfigFile,
    mut auth: AuthConfig,
) -> std::result::Result<String, Error> {
    let body = serde_json::to_vec(&auth.to_json()).expect("json");
    let reply = ctx.api.request("POST", "/auth", &[], Body::Json(body))?.json()?;
    let status = reply
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let token = reply.get("IdentityToken").and_then(Value::as_str).unwrap_or("");
    if !token.is_empty() {
        auth.password.clear();
        auth.identity_token = token.to_string();
    }
    config
        .store_auth(&auth)
        .map_err(|e| Error::Protocol(e.to_string()))?;
    Ok(status)
}

fn run_login(ctx: &Ctx, p: &Parsed) -> Result {
    let mut user = p.value("username").unwrap_or("").to_string();
    let mut password = p.value("password").unwrap_or("").to_string();
    if !password.is_empty() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        if p.bool("password-stdin") {
            return Err(fail("--password and --password-stdin are mutually exclusive"));
        }
    }
    if p.bool("password-stdin") {
        if user.is_empty() {
            return Err(fail("Must provide --username with --password-stdin"));
        }
        let mut all = String::new();
        ctx.stdin.borrow_mut().read_to_string(&mut all)?;
        password = all.trim_end_matches(['\n', '\r']).to_string();
    }
    let given = p.args.first().map(String::as_str).unwrap_or("");
    let server = if given.is_empty() || given == "docker.io" {
        INDEX_SERVER.to_string()
    } else {
        convert_to_hostname(given)
    };
    let mut config = ConfigFile::load(&ctx.config_dir)?;
    let mut stored = AuthConfig::default();
    if user.is_empty() && password.is_empty() {
        stored = config.get_auth(&server)?;
        if !stored.username.is_empty() && !stored.password.is_empty() {
            eprintln!(
                "Authenticating with existing credentials... [Username: {}]",
                stored.username
            );
            match login_and_store(ctx, &mut config, stored.clone()) {
                Ok(status) => {
                    if !status.is_empty() {
                        ctx.print(&format!("{status}\n"))?;
                    }
                    return Ok(());
                }
                Err(e @ Error::Connect(..)) => return Err(e.into()),
                Err(Error::Api { status: 401, .. }) => {
                    eprintln!("Stored credentials invalid or expired")
                }
                Err(e) => eprintln!("Login did not succeed, error: {e}"),
            }
        }
    }
    let (u, pw) = prompt(ctx, &user, &password, &stored.username)?;
    user = u;
    let auth = AuthConfig {
        username: user,
        password: pw,
        server_address: server,
        identity_token: String::new(),
    };
    let status = login_and_store(ctx, &mut config, auth)?;
    if !status.is_empty() {
        ctx.print(&format!("{status}\n"))?;
    }
    Ok(())
}

pub const LOGIN: Def = Def {
    name: "login",
    args: "[OPTIONS] [SERVER]",
    desc: "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
    aliases: "",
    options: "  -p, --password string   Password or Personal Access Token (PAT)
      --password-stdin    Take the Password or Personal Access Token
                          (PAT) from stdin
  -u, --username string   Username
",
    flags: &[
        value_flag(Some('p'), "password"),
        bool_flag(None, "password-stdin"),
        value_flag(Some('u'), "username"),
    ],
    count: Count::Max(1),
    run: run_login,
};

fn run_logout(ctx: &Ctx, p: &Parsed) -> Result {
    let given = p.args.first().map(String::as_str).unwrap_or("");
    let (server, hostname) = if given.is_empty() {
        (INDEX_SERVER.to_string(), INDEX_SERVER.to_string())
    } else {
        (given.to_string(), convert_to_hostname(given))
    };
    let mut keys = vec![server.clone()];
    if !given.is_empty() {
        for k in [
            hostname.clone(),
            format!("http://{hostname}"),
            format!("https://{hostname}"),
        ] {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    ctx.print(&format!("Removing login credentials for {hostname}\n"))?;
    let mut config = ConfigFile::load(&ctx.config_dir)?;
    let mut errors = Vec::new();
    for k in &keys {
        if let Err(e) = config.erase_auth(k) {
            errors.push(format!("  {k}: {e}"));
        }
    }
    if errors.len() == keys.len() {
        eprintln!("WARNING: could not erase credentials:");
        for e in errors {
            eprintln!("{e}");
        }
    }
    Ok(())
}

pub const LOGOUT: Def = Def {
    name: "logout",
    args: "[SERVER]",
    desc: "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
    aliases: "",
    options: "",
    flags: &[],
    count: Count::Max(1),
    run: run_logout,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testutil::{self, json_response, Server};

    #[test]
    fn login_stores_and_logout_removes() {
        let cfg = testutil::temp_path("cfg");
        let server = Server::start(vec![
            json_response(200, r#"{"Status":"Login Succeeded","IdentityToken":""}"#),
            json_response(200, r#"{"Status":"Login Succeeded","IdentityToken":"tok123"}"#),
            json_response(
                401,
                r#"{"message":"login attempt to http://127.0.0.1:5055/v2/ failed with status: 401 Unauthorized"}"#,
            ),
        ]);
        let (ctx, out) = testutil::ctx(&server, "secret\n", cfg.clone());
        testutil::run(
            &LOGIN,
            &ctx,
            &["-u", "me", "--password-stdin", "http://127.0.0.1:5055/"],
        )
        .unwrap();
        let c = ConfigFile::load(&cfg).unwrap();
        let a = c.get_auth("127.0.0.1:5055").unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("me", "secret"));
        testutil::run(&LOGIN, &ctx, &["-u", "me", "-p", "pw", "reg.local"]).unwrap();
        let a = ConfigFile::load(&cfg).unwrap().get_auth("reg.local").unwrap();
        assert_eq!(a.identity_token, "tok123");
        assert_eq!(a.password, "");
        let err = testutil::run(&LOGIN, &ctx, &["-u", "me", "-p", "bad", "127.0.0.1:5055"]).unwrap_err();
        assert!(err
            .message
            .starts_with("Error response from daemon: login attempt"));
        assert_eq!(out.text(), "Login Succeeded\nLogin Succeeded\n");
        let reqs = server.finish();
        assert_eq!(reqs[0].target, "/v1.44/auth");
        let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"username":"me","password":"secret","serveraddress":"127.0.0.1:5055"})
        );
        // without a terminal there is no prompt
        let err = testutil::run(&LOGIN, &ctx, &["-p", "x", "reg2.local"]).unwrap_err();
        assert_eq!(
            err.message,
            "Error: Cannot perform an interactive login from a non TTY device"
        );
        let err = testutil::run(&LOGIN, &ctx, &["--password-stdin"]).unwrap_err();
        assert_eq!(err.message, "Must provide --username with --password-stdin");

        let (ctx, out) = testutil::ctx(&Server::start(vec![]), "", cfg.clone());
        testutil::run(&LOGOUT, &ctx, &["http://127.0.0.1:5055"]).unwrap();
        assert_eq!(out.text(), "Removing login credentials for 127.0.0.1:5055\n");
        let a = ConfigFile::load(&cfg)
            .unwrap()
            .get_auth("127.0.0.1:5055")
            .unwrap();
        assert_eq!(a, AuthConfig::default());
        let _ = std::fs::remove_dir_all(&cfg);
    }
}

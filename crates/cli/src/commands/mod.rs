//! The commands: their definitions (usage, help, flags, argument count) and the context
//! they run in. One file per group: `images` (ls, history, inspect, tag, rmi, prune),
//! `transfer` (pull, push, save, load, import), `auth` (login, logout), `system` (info,
//! version, df).

/// The `table` lines of docker's `--format` help.
macro_rules! format_table_help {
    () => {
        "                        'table':            Print output in table format
                        with column headers (default)
                        'table TEMPLATE':   Print output in table format
                        using the given Go template
"
    };
}

/// The `json` and template lines of docker's `--format` help.
macro_rules! format_template_help {
    () => {
        "                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given
                        Go template.
                        Refer to https://docs.docker.com/go/formatting/
                        for more information about formatting output with
                        templates
"
    };
}

pub mod auth;
pub mod container;
pub mod images;
pub mod network;
pub mod system;
pub mod transfer;
pub mod volume;

use crate::args::{Count, Flag, Parsed, Spec, UsageError};
use crate::host::Api;
use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// What a command runs with.
pub struct Ctx {
    pub api: Api,
    /// stdout (a buffer in tests)
    pub stdout: RefCell<Box<dyn Write>>,
    /// stdin (canned in tests)
    pub stdin: RefCell<Box<dyn BufRead>>,
    pub config_dir: PathBuf,
    pub out_tty: bool,
    pub in_tty: bool,
    /// the terminal's width (docker's fallback of 200 when it cannot be read)
    pub width: usize,
    pub debug: bool,
}

impl Ctx {
    pub fn new(api: Api, config_dir: PathBuf, debug: bool) -> Ctx {
        let out_tty = std::io::stdout().is_terminal();
        let width = if out_tty {
            use std::os::fd::AsFd;
            berth_sys::term::window_size(std::io::stdout().as_fd())
                .map(|(_, cols)| cols as usize)
                .unwrap_or(200)
        } else {
            0
        };
        Ctx {
            api,
            stdout: RefCell::new(Box::new(std::io::stdout())),
            stdin: RefCell::new(Box::new(std::io::BufReader::new(std::io::stdin()))),
            config_dir,
            out_tty,
            in_tty: std::io::stdin().is_terminal(),
            width,
            debug,
        }
    }

    /// Writes to stdout and flushes.
    pub fn print(&self, text: &str) -> Result {
        let mut o = self.stdout.borrow_mut();
        o.write_all(text.as_bytes())?;
        o.flush()?;
        Ok(())
    }

    pub fn target(&self) -> crate::jsonmessage::Target {
        crate::jsonmessage::Target {
            terminal: self.out_tty,
            width: self.width,
        }
    }
}

/// A failed command: the message for stderr (none when empty) and the exit code.
#[derive(Debug)]
pub struct Fail {
    pub message: String,
    pub code: i32,
}

pub fn fail(message: impl Into<String>) -> Fail {
    Fail {
        message: message.into(),
        code: 1,
    }
}

macro_rules! fail_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Fail {
            fn from(e: $t) -> Fail {
                fail(e.to_string())
            }
        }
    )*};
}
fail_from!(
    crate::http::Error,
    crate::jsonmessage::Error,
    crate::config::Error,
    crate::format::Error,
    std::io::Error
);

impl From<UsageError> for Fail {
    fn from(e: UsageError) -> Fail {
        Fail {
            message: e.message,
            code: e.code,
        }
    }
}

pub type Result = std::result::Result<(), Fail>;

/// A command: what `--help` shows, its flags and how it runs.
pub struct Def {
    /// the name under its group (`ls`) or at the top (`images`)
    pub name: &'static str,
    /// the arguments part of the usage line: `[OPTIONS] [REPOSITORY[:TAG]]`
    pub args: &'static str,
    pub desc: &'static str,
    pub aliases: &'static str,
    /// the `Options:` block, as docker prints it
    pub options: &'static str,
    pub flags: &'static [Flag],
    pub count: Count,
    pub run: fn(&Ctx, &Parsed) -> Result,
}

impl Def {
    /// The spec for this command invoked as `path` (`images` or `image ls`).
    pub fn spec(&self, path: &str) -> Spec {
        let mut help = format!("{}\n", self.desc);
        if !self.aliases.is_empty() {
            help.push_str(&format!("\nAliases:\n  {}\n", self.aliases));
        }
        if !self.options.is_empty() {
            help.push_str(&format!("\nOptions:\n{}", self.options));
        }
        Spec {
            path: path.to_string(),
            usage: if self.args.is_empty() {
                path.to_string()
            } else {
                format!("{path} {}", self.args)
            },
            help,
            flags: self.flags,
            count: self.count,
        }
    }
}

/// A group of commands (`image`, `system`).
pub struct Group {
    pub name: &'static str,
    pub desc: &'static str,
    /// (name, definition); aliases appear as extra names
    pub commands: &'static [(&'static str, &'static Def)],
    /// the listing in `--help`
    pub listing: &'static str,
}

impl Group {
    pub fn help(&self) -> String {
        format!(
            "Usage:  berth {} COMMAND\n\n{}\n\nCommands:\n{}\nRun 'berth {} COMMAND --help' for more information on a command.\n",
            self.name, self.desc, self.listing, self.name
        )
    }

    pub fn find(&self, name: &str) -> Option<&'static Def> {
        self.commands.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
    }
}

pub const IMAGE: Group = Group {
    name: "image",
    desc: "Manage images",
    commands: &[
        ("history", &images::HISTORY),
        ("import", &transfer::IMPORT),
        ("inspect", &images::IMAGE_INSPECT),
        ("load", &transfer::LOAD),
        ("ls", &images::LS),
        ("list", &images::LS),
        ("prune", &images::PRUNE),
        ("pull", &transfer::PULL),
        ("push", &transfer::PUSH),
        ("rm", &images::RMI),
        ("remove", &images::RMI),
        ("save", &transfer::SAVE),
        ("tag", &images::TAG),
    ],
    listing: "  history     Show the history of an image
  import      Import the contents from a tarball to create a filesystem image
  inspect     Display detailed information on one or more images
  load        Load an image from a tar archive or STDIN
  ls          List images
  prune       Remove unused images
  pull        Download an image from a registry
  push        Upload an image to a registry
  rm          Remove one or more images
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
",
};

pub const SYSTEM: Group = Group {
    name: "system",
    desc: "Manage berth",
    commands: &[("df", &system::DF), ("info", &system::INFO)],
    listing: "  df          Show berth disk usage
  info        Display system-wide information
",
};

/// Top-level commands.
pub const TOP: &[&Def] = &[
    &transfer::PULL,
    &transfer::PUSH,
    &images::LS,
    &auth::LOGIN,
    &auth::LOGOUT,
    &system::VERSION_CMD,
    &system::INFO,
    &images::HISTORY,
    &transfer::IMPORT,
    &images::INSPECT,
    &transfer::LOAD,
    &images::RMI,
    &transfer::SAVE,
    &images::TAG,
];

/// docker commands berth does not have yet: a clear error, never a pretend success.
pub const LATER_COMMANDS: &[&str] = &[
    "commit",
    "build",
    "buildx",
    "builder",
    "search",
    "events",
    "checkpoint",
    "context",
    "manifest",
    "plugin",
    "trust",
    "config",
    "node",
    "secret",
    "service",
    "stack",
    "swarm",
    "compose",
];

pub const MAIN_HELP: &str = "Usage:  berth [OPTIONS] COMMAND

A self-sufficient runtime for containers

Common Commands:
  run         Create and run a new container from an image
  exec        Execute a command in a running container
  ps          List containers
  pull        Download an image from a registry
  push        Upload an image to a registry
  images      List images
  login       Authenticate to a registry
  logout      Log out from a registry
  version     Show the berth version information
  info        Display system-wide information

Management Commands:
  container   Manage containers
  image       Manage images
  network     Manage networks
  system      Manage berth
  volume      Manage volumes

Commands:
  attach      Attach local standard input, output, and error streams to a running container
  cp          Copy files/folders between a container and the local filesystem
  create      Create a new container
  diff        Inspect changes to files or directories on a container's filesystem
  export      Export a container's filesystem as a tar archive
  history     Show the history of an image
  import      Import the contents from a tarball to create a filesystem image
  inspect     Return low-level information on berth objects
  kill        Kill one or more running containers
  load        Load an image from a tar archive or STDIN
  logs        Fetch the logs of a container
  pause       Pause all processes within one or more containers
  port        List port mappings or a specific mapping for the container
  rename      Rename a container
  restart     Restart one or more containers
  rm          Remove one or more containers
  rmi         Remove one or more images
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  start       Start one or more stopped containers
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop one or more running containers
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  top         Display the running processes of a container
  unpause     Unpause all processes within one or more containers
  update      Update configuration of one or more containers
  wait        Block until one or more containers stop, then print their exit codes

Not implemented yet:
  build, commit, events, ...

Global Options:
      --config string      Location of client config files (default
                           \"~/.docker\")
  -D, --debug              Enable debug mode
  -H, --host string        Daemon socket to connect to (default
                           \"unix:///run/berth/berth.sock\", or $BERTH_HOST)
  -l, --log-level string   Set the logging level (\"debug\", \"info\",
                           \"warn\", \"error\", \"fatal\") (default \"info\")
  -v, --version            Print version information and quit

Run 'berth COMMAND --help' for more information on a command.
";

#[cfg(test)]
pub mod testutil {
    //! A tiny HTTP server on a temporary unix socket, answering canned responses and
    //! recording the requests it got.

    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    #[derive(Debug, Clone)]
    pub struct Recorded {
        pub method: String,
        pub target: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Recorded {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    pub struct Server {
        pub path: PathBuf,
        pub requests: Arc<Mutex<Vec<Recorded>>>,
        handle: Option<JoinHandle<()>>,
    }

    pub fn temp_path(name: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::env::temp_dir().join(format!("berth-cli-{name}-{}-{n}", std::process::id()))
    }

    fn read_request(r: &mut BufReader<impl Read>) -> Option<Recorded> {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let mut parts = line.split_whitespace();
        let method = parts.next()?.to_string();
        let target = parts.next()?.to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(len) = get("Content-Length") {
            body.resize(len.parse().ok()?, 0);
            r.read_exact(&mut body).ok()?;
        } else if get("Transfer-Encoding").is_some() {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).ok()?;
                let n = usize::from_str_radix(size.trim(), 16).ok()?;
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk).ok()?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        Some(Recorded {
            method,
            target,
            headers,
            body,
        })
    }

    impl Server {
        /// Serves `responses` (raw HTTP answers) in order, one per connection.
        pub fn start(responses: Vec<String>) -> Server {
            let path = temp_path("sock");
            let listener = UnixListener::bind(&path).unwrap();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let recs = requests.clone();
            let handle = std::thread::spawn(move || {
                for resp in responses {
                    let Ok((stream, _)) = listener.accept() else {
                        return;
                    };
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    if let Some(req) = read_request(&mut reader) {
                        recs.lock().unwrap().push(req);
                    }
                    let mut w = stream;
                    let _ = w.write_all(resp.as_bytes());
                }
            });
            Server {
                path,
                requests,
                handle: Some(handle),
            }
        }

        pub fn endpoint(&self) -> crate::http::Endpoint {
            crate::http::Endpoint::Unix(self.path.clone())
        }

        /// Waits for the server to have answered everything and returns the requests.
        pub fn finish(mut self) -> Vec<Recorded> {
            if let Some(h) = self.handle.take() {
                h.join().unwrap();
            }
            let _ = std::fs::remove_file(&self.path);
            self.requests.lock().unwrap().clone()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// A shared buffer standing for stdout.
    #[derive(Clone, Default)]
    pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A context talking to `server`, with captured stdout and the given stdin.
    pub fn ctx(server: &Server, stdin: &str, config_dir: PathBuf) -> (super::Ctx, Captured) {
        let cap = Captured::default();
        let ctx = super::Ctx {
            api: crate::host::Api::fixed(server.endpoint()),
            stdout: std::cell::RefCell::new(Box::new(cap.clone())),
            stdin: std::cell::RefCell::new(Box::new(std::io::Cursor::new(stdin.as_bytes().to_vec()))),
            config_dir,
            out_tty: false,
            in_tty: false,
            width: 0,
            debug: false,
        };
        (ctx, cap)
    }

    /// Parses `args` for `def` and runs it.
    pub fn run(def: &super::Def, ctx: &super::Ctx, args: &[&str]) -> super::Result {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let parsed = def.spec(def.name).parse(&argv)?;
        (def.run)(ctx, &parsed)
    }

    pub fn json_response(status: u16, body: &str) -> String {
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    pub fn chunked_response(status: u16, chunks: &[&str]) -> String {
        let mut s = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        for c in chunks {
            s.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
        }
        s.push_str("0\r\n\r\n");
        s
    }
}

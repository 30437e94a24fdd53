//! A small blocking HTTP/1.1 client for the Engine API over a unix socket or TCP: one
//! connection per request (`Connection: close`), request bodies sent with a length or
//! chunked, response bodies read as they arrive (Content-Length, chunked, or until close).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

pub const API_VERSION: &str = "1.44";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Endpoint {
    /// `unix:///path`, `tcp://host:port` (docker also takes a bare `/path` as unix).
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(format!("invalid host address {s:?}: no socket path"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(p)));
        }
        if let Some(hp) = s.strip_prefix("tcp://").or_else(|| s.strip_prefix("http://")) {
            let hp = hp.trim_end_matches('/');
            if hp.is_empty() {
                return Err(format!("invalid host address {s:?}"));
            }
            let hp = if hp
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            {
                hp.to_string()
            } else {
                format!("{hp}:2375")
            };
            return Ok(Endpoint::Tcp(hp));
        }
        if s.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(s)));
        }
        Err(format!("invalid host address {s:?}: unsupported protocol"))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(hp) => write!(f, "tcp://{hp}"),
        }
    }
}

#[derive(Debug)]
pub enum Error {
    /// the daemon could not be reached at all
    Connect(Endpoint, io::Error),
    Io(io::Error),
    Protocol(String),
    /// a non-2xx answer: docker's "Error response from daemon: <message>"
    Api {
        status: u16,
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(ep, e) => match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => write!(
                    f,
                    "Cannot connect to the berth daemon at {ep}. Is the berth daemon running?"
                ),
                io::ErrorKind::PermissionDenied => write!(
                    f,
                    "permission denied while trying to connect to the berth daemon socket at {ep}: {e}"
                ),
                _ => write!(f, "error during connect to {ep}: {e}"),
            },
            Error::Io(e) => write!(f, "error reading the daemon's answer: {e}"),
            Error::Protocol(m) => write!(f, "error reading the daemon's answer: {m}"),
            Error::Api { message, .. } => write!(f, "Error response from daemon: {message}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

pub trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

/// A request body.
pub enum Body<'a> {
    Empty,
    Json(Vec<u8>),
    /// a stream with its content type and, when known, its length (otherwise sent chunked)
    Stream {
        reader: Box<dyn Read + 'a>,
        content_type: &'static str,
        length: Option<u64>,
    },
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: BodyReader,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn bytes(mut self) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        self.body.read_to_end(&mut v)?;
        Ok(v)
    }

    pub fn json(self) -> Result<serde_json::Value, Error> {
        let b = self.bytes()?;
        serde_json::from_slice(&b).map_err(|e| Error::Protocol(format!("invalid JSON: {e}")))
    }
}

enum Framing {
    Length(u64),
    Chunked { left: u64, done: bool },
    Close,
}

/// A response body, decoded as it is read.
pub struct BodyReader {
    conn: BufReader<Box<dyn Conn>>,
    framing: Framing,
}

impl BodyReader {
    /// A body from any byte stream with chunked framing (tests and replays).
    #[cfg(test)]
    pub fn chunked_from<R: Read + Send + 'static>(r: R) -> BodyReader {
        BodyReader {
            conn: BufReader::new(Box::new(ReadOnly(r))),
            framing: Framing::Chunked { left: 0, done: false },
        }
    }
}

#[cfg(test)]
struct ReadOnly<R>(R);
#[cfg(test)]
impl<R: Read> Read for ReadOnly<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.0.read(b)
    }
}
#[cfg(test)]
impl<R> Write for ReadOnly<R> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-line",
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| bad("non-UTF-8 header line"))
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.framing {
            Framing::Close => self.conn.read(buf),
            Framing::Length(left) => {
                if *left == 0 {
                    return Ok(0);
                }
                let max = buf.len().min(*left as usize);
                let n = self.conn.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "body shorter than its Content-Length",
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::Chunked { left, done } => {
                if *done {
                    return Ok(0);
                }
                if *left == 0 {
                    let line = read_line(&mut self.conn)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size =
                        u64::from_str_radix(size, 16).map_err(|_| bad(format!("bad chunk size {line:?}")))?;
                    if size == 0 {
                        // trailers, up to the empty line
                        while !read_line(&mut self.conn)?.is_empty() {}
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let max = buf.len().min(*left as usize);
                let n = self.conn.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed mid-chunk",
                    ));
                }
                *left -= n as u64;
                if *left == 0 {
                    let end = read_line(&mut self.conn)?;
                    if !end.is_empty() {
                        return Err(bad("chunk not followed by CRLF"));
                    }
                }
                Ok(n)
            }
        }
    }
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's path escaping of `url.URL.EscapedPath` for one path piece (slashes kept).
pub fn path_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b'/'
            | b':'
            | b';'
            | b'='
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.Values.Encode`: keys sorted, values of a key in the order added.
pub fn encode_query(pairs: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `http.StatusText` for the codes an API answer may carry.
fn status_text(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A connection to the daemon: a unix socket or TCP.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    /// Closes the writing half (docker's `CloseWrite` when stdin ends).
    pub fn close_write(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }

    /// Closes both halves: a reader blocked on it returns.
    pub fn close(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(b),
            Stream::Tcp(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(b),
            Stream::Tcp(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// A hijacked connection after `101 Switching Protocols`: the daemon's bytes (what it
/// sent after its answer's head comes first) and a writer for ours.
pub struct Hijacked {
    pub reader: BufReader<Box<dyn Conn>>,
    pub writer: Stream,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub endpoint: Endpoint,
    /// the API version in use: this client's, or the daemon's when older (negotiated)
    version: Arc<OnceLock<String>>,
}

/// Compares dotted API versions numerically (`1.41` < `1.44`).
pub fn version_less(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Client {
        Client {
            endpoint,
            version: Arc::new(OnceLock::new()),
        }
    }

    /// The API version requests are sent with.
    pub fn version(&self) -> &str {
        self.version.get().map(String::as_str).unwrap_or(API_VERSION)
    }

    /// docker's version negotiation: `GET /_ping`, and the daemon's `API-Version` when it
    /// is older than ours. Done once; a daemon that does not say keeps ours.
    pub fn negotiate(&self) -> Result<(), Error> {
        if self.version.get().is_some() {
            return Ok(());
        }
        let resp = self.send_target("GET", "/_ping", &[], Body::Empty)?;
        let v = match resp.header("API-Version") {
            Some(v) if !v.is_empty() && version_less(v, API_VERSION) => v.to_string(),
            _ => API_VERSION.to_string(),
        };
        let _ = self.version.set(v);
        Ok(())
    }

    fn open(&self) -> Result<Stream, Error> {
        match &self.endpoint {
            Endpoint::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
            Endpoint::Tcp(hp) => TcpStream::connect(hp.as_str()).map(Stream::Tcp),
        }
        .map_err(|e| Error::Connect(self.endpoint.clone(), e))
    }

    fn connect(&self) -> Result<Box<dyn Conn>, Error> {
        Ok(Box::new(self.open()?))
    }

    fn host_header(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(_) => "api.moby.localhost".to_string(),
            Endpoint::Tcp(hp) => hp.clone(),
        }
    }

    /// Sends a request to `/v1.44{path}` (path includes its query) and returns the answer,
    /// whatever its status.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<Response, Error> {
        self.send_target(method, &format!("/v{}{path}", self.version()), headers, body)
    }

    /// docker's hijacked request (`attach`, `exec start`): `Connection: Upgrade`,
    /// `Upgrade: tcp`, and on `101` the raw connection. Any other answer is an API error.
    pub fn hijack(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Hijacked, Error> {
        let mut conn = self.open()?;
        let target = format!("/v{}{path}", self.version());
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: berth/{}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n",
            self.host_header(),
            env!("CARGO_PKG_VERSION")
        );
        let body = body.unwrap_or_default();
        if body.is_empty() {
            head.push_str("Content-Length: 0\r\n\r\n");
        } else {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ));
        }
        conn.write_all(head.as_bytes())?;
        conn.write_all(&body)?;
        conn.flush()?;
        let writer = conn.try_clone()?;
        let mut reader = BufReader::with_capacity(32 * 1024, Box::new(conn) as Box<dyn Conn>);
        let (status, headers) = read_head(&mut reader)?;
        if status == 101 || status == 200 {
            return Ok(Hijacked { reader, writer });
        }
        let framing = framing(method, status, &headers)?;
        let resp = Response {
            status,
            headers,
            body: BodyReader {
                conn: reader,
                framing,
            },
        };
        Err(api_error(resp, path))
    }

    fn send_target(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<Response, Error> {
        let mut conn = self.connect()?;
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: berth/{}\r\nConnection: close\r\n",
            self.host_header(),
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let write_result = match body {
            Body::Empty => {
                if method != "GET" && method != "HEAD" {
                    head.push_str("Content-Length: 0\r\n");
                }
                head.push_str("\r\n");
                conn.write_all(head.as_bytes())
            }
            Body::Json(b) => {
                head.push_str(&format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    b.len()
                ));
                conn.write_all(head.as_bytes()).and_then(|_| conn.write_all(&b))
            }
            Body::Stream {
                mut reader,
                content_type,
                length,
            } => {
                head.push_str(&format!("Content-Type: {content_type}\r\n"));
                match length {
                    Some(n) => head.push_str(&format!("Content-Length: {n}\r\n\r\n")),
                    None => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
                }
                conn.write_all(head.as_bytes())
                    .and_then(|_| send_stream(&mut conn, &mut reader, length.is_none()))
            }
        };
        conn.flush().ok();
        let mut reader = BufReader::with_capacity(64 * 1024, conn);
        match read_head(&mut reader) {
            Ok((status, headers)) => {
                let framing = framing(method, status, &headers)?;
                Ok(Response {
                    status,
                    headers,
                    body: BodyReader {
                        conn: reader,
                        framing,
                    },
                })
            }
            // the daemon may answer (an error) before reading the whole body: prefer its
            // answer; otherwise report the failed write
            Err(e) => Err(match write_result {
                Err(w) => Error::Io(w),
                Ok(()) => e,
            }),
        }
    }

    /// `send`, turning a non-2xx answer into `Error::Api` with docker's message.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<Response, Error> {
        let resp = self.send(method, path, headers, body)?;
        // docker's checkResponseErr: anything below 400 is an answer (304: already stopped)
        if (200..400).contains(&resp.status) {
            return Ok(resp);
        }
        Err(api_error(resp, path))
    }

    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, Error> {
        self.request("GET", path, &[], Body::Empty)?.json()
    }
}

fn send_stream(conn: &mut Box<dyn Conn>, reader: &mut dyn Read, chunked: bool) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        if chunked {
            conn.write_all(format!("{n:x}\r\n").as_bytes())?;
            conn.write_all(&buf[..n])?;
            conn.write_all(b"\r\n")?;
        } else {
            conn.write_all(&buf[..n])?;
        }
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n")?;
    }
    Ok(())
}

fn read_head(r: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), Error> {
    loop {
        let status_line = read_line(r).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                Error::Protocol("the daemon closed the connection without an answer".into())
            }
            _ => Error::Io(e),
        })?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let code = parts.next().and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code.filter(|_| version.starts_with("HTTP/1.")) else {
            return Err(Error::Protocol(format!("bad status line {status_line:?}")));
        };
        let mut headers = Vec::new();
        loop {
            let line = read_line(r)?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| Error::Protocol(format!("bad header line {line:?}")))?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        if (100..200).contains(&code) && code != 101 {
            continue;
        }
        return Ok((code, headers));
    }
}

fn framing(method: &str, status: u16, headers: &[(String, String)]) -> Result<Framing, Error> {
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    if method == "HEAD" || status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    if get("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Ok(Framing::Chunked { left: 0, done: false });
    }
    if let Some(len) = get("Content-Length") {
        let n = len
            .parse()
            .map_err(|_| Error::Protocol(format!("bad Content-Length {len:?}")))?;
        return Ok(Framing::Length(n));
    }
    Ok(Framing::Close)
}

/// docker's `checkResponseErr`.
fn api_error(resp: Response, path: &str) -> Error {
    let status = resp.status;
    let is_json = resp
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("application/json"));
    let body = match resp.bytes() {
        Ok(b) => b,
        Err(e) => return e,
    };
    let message = if body.is_empty() {
        format!(
            "request returned {} for API route and version /v{API_VERSION}{path}, check if the server supports the requested API version",
            status_text(status)
        )
    } else {
        let parsed = serde_json::from_slice::<serde_json::Value>(&body).ok();
        match parsed
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(|m| m.as_str())
        {
            Some(m) => m.to_string(),
            None if is_json => format!("Error reading JSON: {}", String::from_utf8_lossy(&body).trim()),
            None => String::from_utf8_lossy(&body).trim().to_string(),
        }
    };
    Error::Api { status, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunked_bodies() {
        let raw = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n".to_vec();
        let mut r = BodyReader::chunked_from(io::Cursor::new(raw));
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello, world");
        let mut r = BodyReader::chunked_from(io::Cursor::new(b"zz\r\n".to_vec()));
        assert!(r.read_to_string(&mut String::new()).is_err());
        let mut r = BodyReader::chunked_from(io::Cursor::new(b"5\r\nhel".to_vec()));
        assert!(r.read_to_string(&mut String::new()).is_err());
    }

    #[test]
    fn queries_like_go() {
        assert_eq!(
            encode_query(&[
                ("tag", "latest".into()),
                ("fromImage", "127.0.0.1:5000/busybox".into()),
                ("names", "a b".into()),
                ("names", "c".into()),
            ]),
            "fromImage=127.0.0.1%3A5000%2Fbusybox&names=a+b&names=c&tag=latest"
        );
        assert_eq!(
            path_escape("127.0.0.1:5000/busybox:v1"),
            "127.0.0.1:5000/busybox:v1"
        );
        assert_eq!(path_escape("a b?"), "a%20b%3F");
    }

    #[test]
    fn negotiates_down_to_an_older_daemon() {
        use crate::commands::testutil::{json_response, Server};
        let server = Server::start(vec![
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK".into(),
            json_response(200, "[]"),
        ]);
        let c = Client::new(server.endpoint());
        c.negotiate().unwrap();
        assert_eq!(c.version(), "1.41");
        c.get_json("/containers/json").unwrap();
        let reqs = server.finish();
        assert_eq!(reqs[0].target, "/_ping");
        assert_eq!(reqs[1].target, "/v1.41/containers/json");
        assert!(version_less("1.9", "1.41") && !version_less("1.50", "1.44"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("unix:///run/berth/berth.sock").unwrap(),
            Endpoint::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375").unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1").unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".into())
        );
        assert!(Endpoint::parse("ssh://x").is_err());
        assert_eq!(Endpoint::Unix("/x.sock".into()).to_string(), "unix:///x.sock");
    }
}

//! HTTP plumbing for the API: responses in dockerd's shapes (JSON bodies, `{"message"}` errors,
//! streamed JSON lines), query strings, and request bodies as blocking readers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{self, Read};

use berth_engine::images::Error;
use berth_engine::progress::Message;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

pub type Body = BoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

pub fn json<T: serde::Serialize>(status: u16, v: &T) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut b = body;
    b.push(b'\n');
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(full(b))
        .expect("static response parts")
}

/// dockerd's error body: `{"message": "..."}`.
pub fn error(status: u16, message: &str) -> Resp {
    json(status, &serde_json::json!({ "message": message }))
}

pub fn engine_error(e: &Error) -> Resp {
    error(e.status(), &e.to_string())
}

pub fn status(code: u16) -> Resp {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .body(empty())
        .expect("static response parts")
}

/// A streamed body fed from a channel of chunks.
pub fn streamed(content_type: &str, rx: mpsc::Receiver<Bytes>) -> Resp {
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    Response::builder()
        .status(200)
        .header("Content-Type", content_type)
        .body(BodyExt::boxed(StreamBody::new(s)))
        .expect("static response parts")
}

/// Query parameters; repeated keys keep every value.
#[derive(Debug, Default)]
pub struct Query(BTreeMap<String, Vec<String>>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            m.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Query(m)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.last()).map(|s| s.as_str())
    }

    pub fn str(&self, k: &str) -> &str {
        self.get(k).unwrap_or("")
    }

    pub fn all(&self, k: &str) -> &[String] {
        self.0.get(k).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// dockerd's boolean parameters: `1`, `true`, `True` (and empty means false).
    pub fn bool(&self, k: &str) -> bool {
        matches!(
            self.get(k).map(|s| s.to_ascii_lowercase()).as_deref(),
            Some("1" | "true" | "yes")
        )
    }
}

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Resp> {
    let mut out = Vec::new();
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| error(400, &format!("read the request body: {e}")))?;
        if let Ok(d) = frame.into_data() {
            if out.len() + d.len() > limit {
                return Err(error(413, "the request body is too large"));
            }
            out.extend_from_slice(&d);
        }
    }
    Ok(Bytes::from(out))
}

/// The body as JSON: an empty or blank body is `{}`, a malformed one a 400 "invalid JSON".
pub async fn read_json<T: serde::de::DeserializeOwned>(body: Incoming, limit: usize) -> Result<T, Resp> {
    let b = read_body(body, limit).await?;
    let text: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &b
    };
    serde_json::from_slice(text).map_err(|e| error(400, &format!("invalid JSON: {e}")))
}

/// The request body as a blocking reader (for work done in `spawn_blocking`).
pub fn body_reader(body: Incoming) -> BodyReader {
    let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(32);
    tokio::spawn(async move {
        let mut s = http_body_util::BodyStream::new(body);
        while let Some(f) = s.next().await {
            let item = match f {
                Ok(f) => match f.into_data() {
                    Ok(d) => Ok(d),
                    Err(_) => continue,
                },
                Err(e) => Err(e.to_string()),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    BodyReader {
        rx,
        cur: Bytes::new(),
    }
}

pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// A `Write` that sends what is written as chunks of a streamed response (blocking side).
pub struct ChanWriter {
    pub tx: mpsc::Sender<Bytes>,
    pub buf: Vec<u8>,
}

impl io::Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx
                .blocking_send(chunk)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        }
        Ok(())
    }
}

/// Runs an operation that reports progress messages. An operation that fails before its first
/// message answers with the error's status (as dockerd does for a pull of an unknown tag); once
/// messages flow, the answer is a 200 stream of JSON lines and a later failure is its last line.
pub async fn progress_stream<F>(op: F, mut rx: mpsc::UnboundedReceiver<Message>) -> Resp
where
    F: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    let mut task = tokio::spawn(op);
    let first = tokio::select! {
        m = rx.recv() => m,
        r = &mut task => {
            let r = r.unwrap_or_else(|e| Err(Error::Internal(e.to_string())));
            // Finished before saying anything, or said things and finished at once.
            let mut lines = Vec::new();
            while let Ok(m) = rx.try_recv() {
                lines.extend(m.line());
            }
            if lines.is_empty() {
                return match r {
                    Ok(()) => json(200, &serde_json::json!({})),
                    Err(e) => engine_error(&e),
                };
            }
            if let Err(e) = r {
                lines.extend(Message::error(e.to_string()).line());
            }
            return Response::builder()
                .status(200)
                .header("Content-Type", "application/json")
                .body(full(lines))
                .expect("static response parts");
        }
    };
    let (tx, out) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        if let Some(m) = first {
            let _ = tx.send(Bytes::from(m.line())).await;
        }
        while let Some(m) = rx.recv().await {
            if tx.send(Bytes::from(m.line())).await.is_err() {
                break;
            }
        }
        let r = task.await.unwrap_or_else(|e| Err(Error::Internal(e.to_string())));
        if let Err(e) = r {
            let _ = tx.send(Bytes::from(Message::error(e.to_string()).line())).await;
        }
    });
    streamed("application/json", out)
}

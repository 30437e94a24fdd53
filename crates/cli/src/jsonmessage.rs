//! The daemon's streamed JSON messages (pull, push, load, import) rendered as docker's
//! `jsonmessage.DisplayJSONMessagesStream` does: on a terminal one line per layer id,
//! updated in place with cursor movement and progress bars; elsewhere one plain line per
//! message, messages carrying a progress bar left out.

use crate::units;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};

#[derive(Debug)]
pub enum Error {
    /// an `errorDetail` (or `error`) message from the daemon
    Message(String),
    Decode(String),
    Io(io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Message(m) | Error::Decode(m) => f.write_str(m),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Where the messages go: a terminal of some width, or a plain stream.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub terminal: bool,
    /// the terminal's width (docker draws the bar only above 110 columns)
    pub width: usize,
}

#[derive(Default, Debug)]
struct Progress {
    current: i64,
    total: i64,
    start: i64,
    hide_counts: bool,
    units: String,
}

impl Progress {
    fn from(v: &Value) -> Option<Progress> {
        let o = v.as_object()?;
        let num = |k: &str| o.get(k).and_then(Value::as_i64).unwrap_or(0);
        Some(Progress {
            current: num("current"),
            total: num("total"),
            start: num("start"),
            hide_counts: o.get("hidecounts").and_then(Value::as_bool).unwrap_or(false),
            units: o.get("units").and_then(Value::as_str).unwrap_or("").to_string(),
        })
    }

    /// `JSONProgress.String`.
    fn render(&self, width: usize, now: i64) -> String {
        if self.current <= 0 && self.total <= 0 {
            return String::new();
        }
        if self.total <= 0 {
            return if self.units.is_empty() {
                format!("{:>8}", units::human_size(self.current as f64))
            } else {
                format!("{} {}", self.current, self.units)
            };
        }
        let percentage = ((self.current as f64 / self.total as f64 * 100.0) as i64 / 2).min(50);
        let mut bar = String::new();
        if width > 110 {
            let spaces = (50 - percentage).max(0) as usize;
            bar = format!(
                "[{}>{}] ",
                "=".repeat(percentage.max(0) as usize),
                " ".repeat(spaces)
            );
        }
        let numbers = if self.hide_counts {
            String::new()
        } else if self.units.is_empty() {
            let current = units::human_size(self.current as f64);
            if self.current > self.total {
                format!("{current:>8}")
            } else {
                format!("{current:>8}/{}", units::human_size(self.total as f64))
            }
        } else if self.current > self.total {
            format!("{} {}", self.current, self.units)
        } else {
            format!("{}/{} {}", self.current, self.total, self.units)
        };
        let mut left = String::new();
        if self.current > 0 && self.start > 0 && percentage < 50 {
            let elapsed = (now - self.start).max(0) as f64;
            let per = elapsed / self.current as f64;
            let secs = ((self.total - self.current) as f64 * per).round() as i64;
            left = format!(" {}", go_duration(secs));
        }
        format!("{bar}{numbers}{left}")
    }
}

/// Go's `time.Duration.String` for whole seconds.
fn go_duration(secs: i64) -> String {
    if secs <= 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// docker's `JSONMessage.Display`; an error message ends the stream.
fn display_one(v: &Value, out: &mut dyn Write, t: Target, now: i64) -> Result<(), Error> {
    if let Some(detail) = v.get("errorDetail").filter(|d| !d.is_null()) {
        let msg = detail
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_else(|| str_field(v, "error"));
        return Err(Error::Message(msg.to_string()));
    }
    if let Some(e) = v.get("error").and_then(Value::as_str).filter(|e| !e.is_empty()) {
        return Err(Error::Message(e.to_string()));
    }
    let progress = v.get("progressDetail").and_then(Progress::from);
    let stream = str_field(v, "stream");
    let status = str_field(v, "status");
    let progress_message = str_field(v, "progress");
    let mut endl = "";
    let io = |r: io::Result<()>| r.map_err(Error::Io);
    if t.terminal && stream.is_empty() && progress.is_some() {
        io(write!(out, "\x1b[2K\r"))?;
        endl = "\r";
    } else if progress
        .as_ref()
        .is_some_and(|p| !p.render(t.width, now).is_empty())
    {
        return Ok(()); // no progress bars off a terminal
    }
    if let Some(nano) = v.get("timeNano").and_then(Value::as_i64).filter(|n| *n != 0) {
        io(write!(
            out,
            "{} ",
            rfc3339_nano(nano / 1_000_000_000, nano % 1_000_000_000)
        ))?;
    } else if let Some(secs) = v.get("time").and_then(Value::as_i64).filter(|n| *n != 0) {
        io(write!(out, "{} ", rfc3339_nano(secs, 0)))?;
    }
    let id = str_field(v, "id");
    if !id.is_empty() {
        io(write!(out, "{id}: "))?;
    }
    let from = str_field(v, "from");
    if !from.is_empty() {
        io(write!(out, "(from {from}) "))?;
    }
    match &progress {
        Some(p) if t.terminal => io(write!(out, "{status} {}{endl}", p.render(t.width, now)))?,
        _ if !progress_message.is_empty() => io(write!(out, "{status} {progress_message}{endl}"))?,
        _ if !stream.is_empty() => io(write!(out, "{stream}{endl}"))?,
        _ => io(writeln!(out, "{status}{endl}"))?,
    }
    Ok(())
}

fn rfc3339_nano(secs: i64, nanos: i64) -> String {
    let (y, mo, d, h, mi, s) = units::civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}Z")
}

/// docker's `DisplayJSONMessagesStream`: renders every message of `input` as it arrives;
/// `aux` receives the messages carrying an `aux` object.
pub fn display_stream(
    input: impl Read,
    out: &mut dyn Write,
    t: Target,
    aux: &mut dyn FnMut(&Value),
) -> Result<(), Error> {
    display_stream_at(input, out, t, aux, units::now_unix)
}

fn display_stream_at(
    input: impl Read,
    out: &mut dyn Write,
    t: Target,
    aux: &mut dyn FnMut(&Value),
    now: fn() -> i64,
) -> Result<(), Error> {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let reader = BufReader::new(input);
    for item in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
        let v = match item {
            Ok(v) => v,
            Err(e) if e.is_io() => return Err(Error::Io(io::Error::other(e.to_string()))),
            Err(e) => return Err(Error::Decode(e.to_string())),
        };
        if v.get("aux").is_some_and(|a| !a.is_null()) {
            aux(&v);
            continue;
        }
        let id = str_field(&v, "id").to_string();
        let has_progress =
            v.get("progressDetail").is_some_and(|p| p.is_object()) || !str_field(&v, "progress").is_empty();
        let mut diff = 0;
        if !id.is_empty() && has_progress {
            let n = ids.len();
            let line = match ids.get(&id) {
                Some(l) => *l,
                None => {
                    ids.insert(id.clone(), n);
                    if t.terminal {
                        writeln!(out).map_err(Error::Io)?;
                    }
                    n
                }
            };
            diff = ids.len() - line;
            if t.terminal && diff > 0 {
                write!(out, "\x1b[{diff}A").map_err(Error::Io)?;
            }
        } else {
            ids.clear();
        }
        let result = display_one(&v, out, t, now());
        if !id.is_empty() && t.terminal && diff > 0 {
            write!(out, "\x1b[{diff}B").map_err(Error::Io)?;
        }
        out.flush().map_err(Error::Io)?;
        result?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PULL: &str = r#"{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"a1b2"}
{"status":"Downloading","progressDetail":{"current":1000000,"total":2000000},"progress":"[=>  ]","id":"a1b2"}
{"status":"Download complete","progressDetail":{},"id":"a1b2"}
{"status":"Pull complete","progressDetail":{},"id":"a1b2"}
{"status":"Digest: sha256:abcd"}
{"status":"Status: Downloaded newer image for busybox:latest"}
"#;

    fn render(input: &str, t: Target) -> (String, Result<(), Error>) {
        let mut out = Vec::new();
        let r = display_stream_at(input.as_bytes(), &mut out, t, &mut |_| {}, || 1000);
        (String::from_utf8(out).unwrap(), r)
    }

    #[test]
    fn plain_stream() {
        let (out, r) = render(
            PULL,
            Target {
                terminal: false,
                width: 0,
            },
        );
        r.unwrap();
        assert_eq!(
            out,
            "latest: Pulling from library/busybox\n\
             a1b2: Pulling fs layer\n\
             a1b2: Download complete\n\
             a1b2: Pull complete\n\
             Digest: sha256:abcd\n\
             Status: Downloaded newer image for busybox:latest\n"
        );
    }

    #[test]
    fn terminal_stream() {
        let (out, r) = render(
            PULL,
            Target {
                terminal: true,
                width: 120,
            },
        );
        r.unwrap();
        let bar = format!("[{}>{}] ", "=".repeat(25), " ".repeat(25));
        let expected = format!(
            "latest: Pulling from library/busybox\n\
             \n\x1b[1A\x1b[2K\ra1b2: Pulling fs layer \r\x1b[1B\
             \x1b[1A\x1b[2K\ra1b2: Downloading {bar}     1MB/2MB\r\x1b[1B\
             \x1b[1A\x1b[2K\ra1b2: Download complete \r\x1b[1B\
             \x1b[1A\x1b[2K\ra1b2: Pull complete \r\x1b[1B\
             Digest: sha256:abcd\n\
             Status: Downloaded newer image for busybox:latest\n"
        );
        assert_eq!(out, expected);
        // narrow terminals get no bar
        let (out, _) = render(
            PULL,
            Target {
                terminal: true,
                width: 80,
            },
        );
        assert!(out.contains("a1b2: Downloading      1MB/2MB\r"));
        // a terminal whose width reads as 0 (a pty without a size) gets none either
        let (out, _) = render(
            PULL,
            Target {
                terminal: true,
                width: 0,
            },
        );
        assert!(out.contains("a1b2: Downloading      1MB/2MB\r"));
    }

    #[test]
    fn errors_and_aux() {
        let input = r#"{"status":"Pushing","progressDetail":{},"id":"x"}{"aux":{"Tag":"latest","Digest":"sha256:1"}}
{"errorDetail":{"message":"denied: no"},"error":"denied: no"}
{"status":"never shown"}"#;
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let r = display_stream_at(
            input.as_bytes(),
            &mut out,
            Target {
                terminal: false,
                width: 0,
            },
            &mut |v| seen.push(v.clone()),
            || 0,
        );
        assert!(matches!(r, Err(Error::Message(m)) if m == "denied: no"));
        assert_eq!(seen.len(), 1);
        assert_eq!(String::from_utf8(out).unwrap(), "x: Pushing\n");
        let (_, r) = render(
            "{\"status\": tru",
            Target {
                terminal: false,
                width: 0,
            },
        );
        assert!(matches!(r, Err(Error::Decode(_))));
    }

    #[test]
    fn progress_forms() {
        let p = Progress {
            current: 500,
            total: 1000,
            start: 900,
            ..Progress::default()
        };
        // 100 s for 500 bytes: 100 s left
        assert_eq!(p.render(80, 1000), "    500B/1kB 1m40s");
        let p = Progress {
            current: 3,
            units: "items".into(),
            ..Progress::default()
        };
        assert_eq!(p.render(200, 0), "3 items");
        let p = Progress {
            current: 2048,
            ..Progress::default()
        };
        assert_eq!(p.render(200, 0), " 2.048kB");
        assert_eq!(go_duration(3725), "1h2m5s");
    }
}

//! Progress messages as dockerd streams them (its "jsonmessage" shape): `{"status":"Downloading",
//! "progressDetail":{"current":1,"total":2},"progress":"[=>   ]  1B/2B","id":"a1b2c3d4e5f6"}`, and
//! `{"errorDetail":{"message":"..."},"error":"..."}` for a failure once the stream has started.

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Detail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErrorDetail {
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Message {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<Detail>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub progress: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Plain output (`load`: "Loaded image: ...\n").
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stream: String,
    /// Extra data some messages carry (push: `{"Tag":..,"Digest":..,"Size":..}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl Message {
    pub fn status(id: &str, status: impl Into<String>) -> Message {
        Message {
            status: status.into(),
            id: id.to_string(),
            ..Default::default()
        }
    }

    /// A status with an empty `progressDetail` (what docker sends for "Pulling fs layer").
    pub fn layer(id: &str, status: &str) -> Message {
        Message {
            status: status.into(),
            id: id.to_string(),
            progress_detail: Some(Detail::default()),
            ..Default::default()
        }
    }

    pub fn progress(id: &str, status: &str, current: u64, total: u64) -> Message {
        Message {
            status: status.into(),
            id: id.to_string(),
            progress_detail: Some(Detail {
                current: Some(current),
                total: Some(total),
            }),
            progress: bar(current, total),
            ..Default::default()
        }
    }

    pub fn stream(text: impl Into<String>) -> Message {
        Message {
            stream: text.into(),
            ..Default::default()
        }
    }

    pub fn error(message: impl Into<String>) -> Message {
        let m = message.into();
        Message {
            error_detail: Some(ErrorDetail { message: m.clone() }),
            error: m,
            ..Default::default()
        }
    }

    /// One line of the stream (JSON and `\r\n`, as dockerd writes it).
    pub fn line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.extend_from_slice(b"\r\n");
        v
    }
}

/// Where an operation reports its progress (the HTTP handler streams it out).
#[derive(Clone)]
pub struct Progress {
    tx: Option<UnboundedSender<Message>>,
}

impl Progress {
    pub fn new(tx: UnboundedSender<Message>) -> Progress {
        Progress { tx: Some(tx) }
    }

    /// Progress nobody reads.
    pub fn discard() -> Progress {
        Progress { tx: None }
    }

    pub fn send(&self, m: Message) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(m);
        }
    }
}

/// go-units' HumanSizeWithPrecision(size, 3), with decimal units: `4.26MB`, `799kB`, `0B`.
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(s, 3), UNITS[i])
}

/// Go's `%.{p}g` for the non-negative values sizes have.
fn go_g(v: f64, p: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // Round to p significant digits in decimal, then decide the form from the rounded exponent.
    let sci = format!("{:.*e}", p - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// The progress text dockerd puts in `progress`: a 50-column bar and `current/total`.
pub fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    // As dockerd draws it: `pct` of 50 columns, an arrow, the rest blank.
    let bar = format!("[{}>{}]", "=".repeat(pct), " ".repeat(50 - pct));
    if current > total {
        return format!("{bar} {:>8}", human_size(current as f64));
    }
    format!(
        "{bar} {:>8}/{}",
        human_size(current as f64),
        human_size(total as f64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(1024.0), "1.02kB");
        assert_eq!(human_size(799_000.0), "799kB");
        assert_eq!(human_size(4_260_000.0), "4.26MB");
        assert_eq!(human_size(2_130_000.0), "2.13MB");
        assert_eq!(human_size(1_240_000_000.0), "1.24GB");
        assert_eq!(human_size(12_345.0), "12.3kB");
        // Go's %.3g switches to the exponent form when rounding carries into a fourth digit.
        assert_eq!(human_size(999_600.0), "1e+03kB");
    }

    #[test]
    fn bars_are_fifty_columns() {
        let b = bar(50, 100);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert_eq!(b.find(']'), Some(52), "{b}");
        assert!(b.ends_with("50B/100B"), "{b}");
        let full = bar(100, 100);
        assert!(full.starts_with(&format!("[{}>]", "=".repeat(50))), "{full}");
        let none = bar(0, 100);
        assert!(none.starts_with("[>"), "{none}");
        assert_eq!(none.find(']'), Some(52));
    }

    #[test]
    fn messages_serialize_like_dockerd() {
        let m = Message::layer("a1b2c3d4e5f6", "Pulling fs layer");
        assert_eq!(
            String::from_utf8(m.line()).unwrap(),
            "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"a1b2c3d4e5f6\"}\r\n"
        );
        let e = Message::error("boom");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#
        );
    }
}

//! Error and debug output as runc writes it: logrus' text format on stderr (`ERRO[0000] msg` on a
//! terminal, `time="..." level=error msg="..."` otherwise) and, with `--log`, lines in the log file in
//! `--log-format` text or json (what containerd reads back to report a runtime's error).

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct Logger {
    pub file: Option<PathBuf>,
    pub json: bool,
    pub debug: bool,
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl Logger {
    pub fn error(&self, msg: &str) {
        self.write("error", msg);
    }

    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let time = berth_runtime::state::now_rfc3339();
        if let Some(path) = &self.file {
            let line = if self.json {
                format!(
                    "{{\"level\":{},\"msg\":{},\"time\":{}}}\n",
                    quote(level),
                    quote(msg),
                    quote(&time)
                )
            } else {
                format!("time={} level={} msg={}\n", quote(&time), level, quote(msg))
            };
            if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
                let _ = f.write_all(line.as_bytes());
            }
            if level != "error" {
                return;
            }
        }
        let stderr = std::io::stderr();
        let line = if stderr.is_terminal() {
            let tag: String = level.to_ascii_uppercase().chars().take(4).collect();
            format!("{tag}[0000] {msg}\n")
        } else {
            format!("time={} level={} msg={}\n", quote(&time), level, quote(msg))
        };
        let _ = stderr.lock().write_all(line.as_bytes());
    }
}

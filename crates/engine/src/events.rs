//! The engine's event stream (`GET /events`): what happened to images (and later containers,
//! networks, volumes), in dockerd's message shape. Recent events are kept for `since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::time;

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Legacy fields dockerd still sends for images and containers.
    pub status: String,
    pub id: String,
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i128,
}

const KEEP: usize = 1024;

pub struct Events {
    tx: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        let (tx, _) = broadcast::channel(1024);
        Events {
            tx,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Records an event about object `id` of kind `typ` (`image`, ...).
    pub fn emit(&self, typ: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let nanos = time::now_nanos();
        let e = Event {
            status: action.to_string(),
            id: id.to_string(),
            typ: typ.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: (nanos / 1_000_000_000) as i64,
            time_nano: nanos,
        };
        if let Ok(mut r) = self.recent.lock() {
            if r.len() == KEEP {
                r.pop_front();
            }
            r.push_back(e.clone());
        }
        let _ = self.tx.send(e);
    }

    /// An image event; `name` goes in the attributes as dockerd does.
    pub fn image(&self, action: &str, id: &str, name: Option<&str>) {
        let mut attrs = BTreeMap::new();
        if let Some(n) = name {
            attrs.insert("name".to_string(), n.to_string());
        }
        self.emit("image", action, id, attrs);
    }

    /// Events from `since` (unix nanoseconds) that are already recorded, and a receiver for the next.
    pub fn subscribe(&self, since: Option<i128>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let rx = self.tx.subscribe();
        let past = match (since, self.recent.lock()) {
            (Some(s), Ok(r)) => r.iter().filter(|e| e.time_nano >= s).cloned().collect(),
            _ => Vec::new(),
        };
        (past, rx)
    }
}

#![recursion_limit = "256"]
//! berthd's services, independent of the HTTP API that exposes them: the image service (pull, push,
//! tag, remove, save, load), the event stream and progress messages in dockerd's shapes.

pub mod containers;
pub mod events;
pub mod images;
pub mod networks;
pub mod progress;
pub mod time;
pub mod volumes;

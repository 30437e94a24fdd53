//! berth's registry client (distribution API v2), the parts that need no network: how a reference
//! becomes URLs, which registries may be spoken to in plain HTTP, how an authentication challenge
//! (`WWW-Authenticate`) is read, and where credentials come from (`~/.docker/config.json`).

pub mod auth;
pub mod client;
pub mod endpoint;

pub use auth::Credentials;
pub use client::{Client, Fetched, RegistryError, Repo};

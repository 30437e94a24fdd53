//! berth's image store (the pieces that need no daemon): content digests, image references with
//! docker's normalization rules, and the content-addressed blob store with verified, resumable
//! ingest. Manifests, unpacking and snapshots build on these.

pub mod builder;
pub mod content;
pub mod digest;
pub mod layerpath;
pub mod manifest;
pub mod meta;
pub mod platform;
pub mod reference;
pub mod snapshot;
pub mod unpack;

pub use content::{ContentError, Store, Writer};
pub use digest::{Digest, DigestError};
pub use manifest::{Descriptor, ImageConfig, Index, Manifest, ManifestError};
pub use platform::Platform;
pub use reference::{Reference, ReferenceError};

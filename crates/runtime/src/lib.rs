//! berth's OCI runtime: config.json -> a validated [`plan::Plan`] (pure data) -> a container created
//! through a single clone into its namespaces. Synchronous, no async runtime: the process that clones
//! into namespaces must stay single-threaded.

pub mod defaults;
pub mod plan;

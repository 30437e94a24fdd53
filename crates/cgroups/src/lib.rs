//! berth-cgroups (being written).

//! berth-seccomp (being written).

//! Shared helpers of the root-tier end-to-end tests.

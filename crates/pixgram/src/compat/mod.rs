//! Compatibility with other wire formats, so users can switch one side at a time.

pub mod seed;
pub mod seed_files;

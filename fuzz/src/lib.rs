//! The logic of Thunderhead's fuzz targets, one module per target, each with
//! `pub fn run(data: &[u8])` that panics only on a real bug.
//!
//! The binaries in `fuzz_targets/` are thin libFuzzer wrappers; the workspace test
//! `thunderhead-tx/tests/fuzz_replay.rs` includes these same files (with `#[path]`) to
//! replay the corpora and regression inputs under plain `cargo test`. So each module is
//! self-contained: it names only external crates, never `crate::` or `super::`.

pub mod open_file;
pub mod ops;
pub mod page_decode;

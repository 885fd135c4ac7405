//! Arbitrary bytes through every decoder of what the engine reads from a store: each
//! page kind (leaf, branch, journal segment, overflow extent) with every accessor of a
//! view that validates, the header, the meta slot with its inline free space, the
//! free-space extent, and the catalog's entries. Each decoder returns an error or a
//! valid value; a panic is a bug. Allocation is bounded by the input (libFuzzer runs
//! with `-malloc_limit_mb`), so a count read from the bytes that sized a buffer
//! without being checked against them shows up as an out-of-memory crash.

/// The target: one input, every decoder.
pub fn run(data: &[u8]) {
    thunderhead_core::testing::decode_everything(data);
}

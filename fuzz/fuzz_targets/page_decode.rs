//! Arbitrary bytes through every page decoder and every accessor of a page that
//! validates: an error or a valid view, never a panic, never an out-of-bounds read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    thunderhead_core::testing::decode_page_all_kinds(data);
});

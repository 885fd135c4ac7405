//! libFuzzer entry point; the target is `thunderhead_fuzz::page_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| thunderhead_fuzz::page_decode::run(data));

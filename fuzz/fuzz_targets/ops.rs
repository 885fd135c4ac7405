//! libFuzzer entry point; the target is `thunderhead_fuzz::ops`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| thunderhead_fuzz::ops::run(data));

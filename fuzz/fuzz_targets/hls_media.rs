//! Fuzz target: see `vodvault_core::fuzzing::hls_media`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vodvault_core::fuzzing::hls_media(data));

//! Fuzz target: see `vodvault_core::fuzzing::hls_master`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vodvault_core::fuzzing::hls_master(data));

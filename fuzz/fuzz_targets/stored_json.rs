//! Fuzz target: see `vodvault_core::fuzzing::stored_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vodvault_core::fuzzing::stored_json(data));

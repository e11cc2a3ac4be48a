//! Fuzz target: see `vodvault_core::fuzzing::sidx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vodvault_core::fuzzing::sidx(data));

//! Fuzz target: see `vodvault_core::fuzzing::sealed`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vodvault_core::fuzzing::sealed(data));

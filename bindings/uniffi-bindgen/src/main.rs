//! `uniffi-bindgen`, built from the same uniffi version as `vodvault-ffi`, so generated bindings
//! always match the library. See `bindings/generate.sh`.

fn main() {
    uniffi::uniffi_bindgen_main()
}

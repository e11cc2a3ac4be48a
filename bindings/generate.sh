#!/usr/bin/env bash
# Builds the vodvault FFI library and generates its Kotlin, Swift and Python bindings from it
# (library mode: the bindings always match the library they were generated from).
#
#   bindings/generate.sh [--release]
#
# Outputs (build outputs, not edited by hand; ignored by git):
#   bindings/kotlin/generated/io/vodvault/vodvault_ffi.kt
#   bindings/swift/generated/{VodVault.swift, VodVaultFFI.h, VodVaultFFI.modulemap}
#   bindings/python/generated/{vodvault_ffi.py, libvodvault_ffi.so|.dylib}
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
flags=()
if [ "${1:-}" = "--release" ]; then profile=release; flags=(--release); fi
cargo build "${flags[@]}" --quiet -p vodvault-ffi -p uniffi-bindgen
case "$(uname -s)" in
  Darwin) lib=target/$profile/libvodvault_ffi.dylib ;;
  *) lib=target/$profile/libvodvault_ffi.so ;;
esac
for lang in kotlin swift python; do
  rm -rf "bindings/$lang/generated"
  "target/$profile/uniffi-bindgen" generate --library "$lib" --language "$lang" \
    --out-dir "bindings/$lang/generated" --no-format >/dev/null
done
cp "$lib" bindings/python/generated/
echo "generated bindings from $lib"

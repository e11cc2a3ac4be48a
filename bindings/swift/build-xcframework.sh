#!/usr/bin/env bash
# Builds VodVaultFFI.xcframework (iOS device, iOS simulator, macOS) and the Swift sources, for
# bindings/swift/Package.swift. Run on macOS with Xcode and rustup:
#   bindings/swift/build-xcframework.sh
# Then: (cd bindings/swift && swift test) runs the Swift tests on macOS.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh needs macOS (xcodebuild, lipo)" >&2; exit 1; }
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
# The `mobile` profile (size-optimised, fat LTO; docs/mobile.md) for what the app links.
for t in "${targets[@]}"; do
  cargo build --profile mobile -p vodvault-ffi --target "$t"
done
# Generate the Swift sources from the host library (the interface is the same on every target),
# built with `release`: uniffi reads the interface from the symbols the mobile profile strips.
cargo build --release -p vodvault-ffi -p uniffi-bindgen
out=bindings/swift/build
rm -rf "$out" && mkdir -p "$out/headers" "$out/ios-sim" "$out/macos"
target/release/uniffi-bindgen generate --library target/release/libvodvault_ffi.dylib \
  --language swift --out-dir "$out/gen"
cp "$out/gen/VodVault.swift" bindings/swift/Sources/VodVault/VodVault.swift
cp "$out/gen/VodVaultFFI.h" "$out/headers/"
# The module map must be named module.modulemap inside an XCFramework.
cp "$out/gen/VodVaultFFI.modulemap" "$out/headers/module.modulemap"
lipo -create target/aarch64-apple-ios-sim/mobile/libvodvault_ffi.a target/x86_64-apple-ios/mobile/libvodvault_ffi.a \
  -output "$out/ios-sim/libvodvault_ffi.a"
lipo -create target/aarch64-apple-darwin/mobile/libvodvault_ffi.a target/x86_64-apple-darwin/mobile/libvodvault_ffi.a \
  -output "$out/macos/libvodvault_ffi.a"
rm -rf bindings/swift/VodVaultFFI.xcframework
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/mobile/libvodvault_ffi.a -headers "$out/headers" \
  -library "$out/ios-sim/libvodvault_ffi.a" -headers "$out/headers" \
  -library "$out/macos/libvodvault_ffi.a" -headers "$out/headers" \
  -output bindings/swift/VodVaultFFI.xcframework
echo "built bindings/swift/VodVaultFFI.xcframework"

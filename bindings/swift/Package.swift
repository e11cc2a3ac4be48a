// swift-tools-version:5.9
// vodvault for iOS and macOS. Build the binary target first, on macOS:
//   bindings/swift/build-xcframework.sh
// which compiles the Rust library for iOS devices, the iOS simulator and macOS, generates
// Sources/VodVault/VodVault.swift, and assembles VodVaultFFI.xcframework here.
import PackageDescription

let package = Package(
    name: "VodVault",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "VodVault", targets: ["VodVault"]),
    ],
    targets: [
        .binaryTarget(name: "VodVaultFFI", path: "VodVaultFFI.xcframework"),
        .target(name: "VodVault", dependencies: ["VodVaultFFI"], path: "Sources/VodVault"),
        .testTarget(name: "VodVaultTests", dependencies: ["VodVault"], path: "Tests/VodVaultTests"),
    ]
)

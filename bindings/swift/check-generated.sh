#!/usr/bin/env bash
# There is no Swift toolchain on Linux CI: check that the generated Swift bindings exist and
# expose what the Swift tests and the README use (bindings/swift/Tests mirror the Kotlin tests).
set -euo pipefail
cd "$(dirname "$0")/generated"
for f in VodVault.swift VodVaultFFI.h VodVaultFFI.modulemap; do
  [ -s "$f" ] || { echo "missing generated $f" >&2; exit 1; }
done
for api in 'public static func `open`(config: VaultConfig)' 'func download(request: DownloadRequest)' \
  'func play(assetId: String)' 'func addListener(listener: VaultListener)' 'func setRefresher(refresher: UrlRefresher?)' \
  'func openReader(assetId: String, name: String)' 'public func rotateVaultKey(' 'public protocol VaultListener' \
  'public protocol UrlRefresher' 'enum VaultError' 'public protocol CredentialsProvider' \
  'func setCredentialsProvider(provider: CredentialsProvider?)' 'func images(assetId: String)' 'case vod(' \
  'func setConditions(conditions: Conditions)' 'func checkSpace(request: DownloadRequest)' \
  'func preview(request: DownloadRequest)' 'case waitingForUnmetered' 'case QuotaExceeded('; do
  grep -qF "$api" VodVault.swift || { echo "generated Swift lacks: $api" >&2; exit 1; }
done
echo "Swift bindings generated ($(wc -l < VodVault.swift) lines); Swift tests need macOS: bindings/swift/build-xcframework.sh"

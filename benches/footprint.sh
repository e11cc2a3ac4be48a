#!/usr/bin/env bash
# The footprint of the library an app ships, and what the size-optimised build costs in throughput.
#
#   benches/footprint.sh [--rounds N]
#
# On an x86-64 Linux host (the target and the ldd list are x86-64's).
# 1. Builds `vodvault-ffi` (the cdylib the Kotlin and Swift packages load) with the `release` and
#    the `mobile` profile and prints both stripped sizes, against the 6 MB target (x86-64).
# 2. `ldd` of the mobile build: fails if it needs anything beyond libc, libm, libgcc_s and ld.
# 3. The ten crates with the most code in it (`cargo bloat --crates`, installed from crates.io if
#    missing; C code such as SQLite shows as [Unknown]).
# 4. Decrypt+verify against OpenSSL AES-256-CTR (benches/compare-openssl.sh), with vodvault built
#    with `mobile` and with `release`: the mobile profile must stay >= 1.0x OpenSSL.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N]" >&2; exit 2 ;;
  esac
done
for tool in strip ldd openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install binutils libc-bin openssl)" >&2; exit 1; }
done
command -v cargo-bloat >/dev/null || cargo install --locked --quiet cargo-bloat

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lib=libvodvault_ffi.so
target=6000000

# Both profiles, built without stripping (cargo bloat needs the symbols), then stripped here.
cargo build --release --quiet -p vodvault-ffi
strip --strip-all -o "$work/release.so" "target/release/$lib"
CARGO_PROFILE_MOBILE_STRIP=false cargo bloat --profile mobile -p vodvault-ffi --lib --crates -n 10 \
  > "$work/bloat.txt" 2> "$work/bloat.err" || { cat "$work/bloat.err" >&2; exit 1; }
strip --strip-all -o "$work/mobile.so" "target/mobile/$lib"
release_size=$(stat -c %s "$work/release.so")
mobile_size=$(stat -c %s "$work/mobile.so")

libs=$(ldd "$work/mobile.so" | awk '{print $1}' | sed 's|.*/||' | sort | tr '\n' ' ')
unexpected=$(echo "$libs" | tr ' ' '\n' | grep -v -E '^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2|)$' || true)

echo "decrypt+verify with the mobile profile ($rounds rounds)..." >&2
benches/compare-openssl.sh --profile mobile --rounds "$rounds" > "$work/mobile-crypto.txt"
echo "decrypt+verify with the release profile ($rounds rounds)..." >&2
benches/compare-openssl.sh --profile release --rounds "$rounds" > "$work/release-crypto.txt"
crypto_ratio() { awk '/^ratio vodvault/ {print $6}' "$1"; }
mobile_ratio=$(crypto_ratio "$work/mobile-crypto.txt")
release_ratio=$(crypto_ratio "$work/release-crypto.txt")

verdict() { awk -v ok="$1" 'BEGIN { print ok ? "meets" : "MISSES" }'; }
cat <<OUT
$(uname -m) · $(rustc --version) · stripped $lib
release profile                          $(printf '%10d' "$release_size") B
mobile profile (opt-level s, fat LTO)    $(printf '%10d' "$mobile_size") B   ($(awk -v a="$mobile_size" -v b="$release_size" 'BEGIN { printf "%.2f", a / b }')x release; $(verdict "$((mobile_size <= target))") the <= 6 MB target: $(awk -v a="$mobile_size" -v b="$target" 'BEGIN { printf "%.2f", a / b }')x)
ldd                                      $libs($( [ -z "$unexpected" ] && echo "only libc, libm, libgcc_s, ld" || echo "UNEXPECTED: $unexpected"))
decrypt+verify / openssl aes-256-ctr     mobile $mobile_ratio, release $release_ratio   ($(verdict "$(awk -v r="$mobile_ratio" 'BEGIN { print (r >= 1.0) }')") the mobile >= 1.0 target)

The ten crates with the most code in the mobile build (cargo bloat --crates; .text only):
$(grep -E '^ *([0-9.]+%|File)' "$work/bloat.txt" | head -13)

$(cat "$work/mobile-crypto.txt")
OUT
[ -z "$unexpected" ]

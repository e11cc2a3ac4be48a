#!/usr/bin/env bash
# Compares vodvault's decrypt+verify throughput with OpenSSL's unauthenticated AES-CTR of the same
# key size (AES-256), single core, in the same run, and prints the ratio.
#
#   benches/compare-openssl.sh [--size BYTES] [--rounds N] [--seconds S] [--profile NAME]
#
# Both sides transform one buffer of --size bytes in place on one pinned core: OpenSSL with
# `openssl speed -evp aes-256-ctr -bytes SIZE`, vodvault with `vodvault bench` (AES-256-GCM open
# of every chunk, tag checked). Rounds alternate between the two so that machine noise hits both;
# medians are compared. AES-128-CTR is printed for reference only (the sealed format uses 256-bit
# keys). Target: ratio >= 0.90. --profile builds vodvault with another cargo profile (`mobile`, as
# benches/footprint.sh does) instead of `release`.
set -euo pipefail
cd "$(dirname "$0")/.."

size=$((64 * 1024 * 1024)) rounds=5 seconds=1 profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    *) echo "usage: $0 [--size BYTES] [--rounds N] [--seconds S] [--profile NAME]" >&2; exit 2 ;;
  esac
done
command -v openssl >/dev/null || { echo "openssl is not installed (apt-get install openssl)" >&2; exit 1; }

cargo build --profile "$profile" --quiet -p vodvault-cli
vodvault=target/$profile/vodvault
pin=()
if command -v taskset >/dev/null; then pin=(taskset -c 0); fi

openssl_gbps() { # cipher -> GB/s (openssl prints thousands of bytes per second)
  "${pin[@]}" openssl speed -evp "$1" -bytes "$size" -seconds "$seconds" 2>/dev/null |
    awk -v c="$(echo "$1" | tr a-z A-Z)" '$1 == c { sub(/k$/, "", $2); printf "%.3f\n", $2 / 1e6 }'
}
ours_gbps() { # -> "decrypt_verify read_at read_at_file" GB/s
  "${pin[@]}" "$vodvault" bench --size "$size" --rounds 1 --seconds "$seconds" --json |
    python3 -c 'import json,sys; r = json.load(sys.stdin); print("%.3f %.3f %.3f" % (r["decrypt_verify_gbps"], r["read_at_gbps"], r["read_at_file_gbps"]))'
}
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

o256=() o128=() ours=() reads=() files=()
for ((i = 1; i <= rounds; i++)); do
  o256+=("$(openssl_gbps aes-256-ctr)")
  read -r dv ra rf < <(ours_gbps)
  ours+=("$dv") reads+=("$ra") files+=("$rf")
  o128+=("$(openssl_gbps aes-128-ctr)")
  echo "round $i/$rounds: openssl aes-256-ctr ${o256[-1]} · vodvault $dv (read_at $ra, from a file $rf) · openssl aes-128-ctr ${o128[-1]} GB/s" >&2
done
m256=$(printf '%s\n' "${o256[@]}" | median)
m128=$(printf '%s\n' "${o128[@]}" | median)
mours=$(printf '%s\n' "${ours[@]}" | median)
mread=$(printf '%s\n' "${reads[@]}" | median)
mfile=$(printf '%s\n' "${files[@]}" | median)
ratio=$(awk -v a="$mours" -v b="$m256" 'BEGIN { printf "%.2f", a / b }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.90) ? "meets" : "MISSES" }')
fratio=$(awk -v a="$mfile" -v b="$m256" 'BEGIN { printf "%.2f", a / b }')
fverdict=$(awk -v r="$fratio" 'BEGIN { print (r >= 0.90) ? "meets" : "MISSES" }')
cat <<OUT
$(openssl version) · $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') · 1 core · buffer $size B · median of $rounds rounds · vodvault built with profile $profile
openssl speed -evp aes-256-ctr (unauthenticated)   $m256 GB/s
vodvault decrypt+verify (AES-256-GCM, sealed v1)  $mours GB/s
ratio vodvault / openssl aes-256-ctr               $ratio  ($verdict the >= 0.90 target)
vodvault read_at from a sealed file, 1 MiB requests  $mfile GB/s
ratio read_at from a file / openssl aes-256-ctr      $fratio  ($fverdict the >= 0.90 target)
(reference) openssl speed -evp aes-128-ctr         $m128 GB/s
(reference) vodvault read_at, copy out of memory + decrypt+verify   $mread GB/s
OUT

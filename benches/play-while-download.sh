#!/usr/bin/env bash
# Playing while downloading, against the origin, in the same run.
#
#   benches/play-while-download.sh [--rounds N] [--segments N]
#
# Makes (once, cached in bench-out/) an AES-128 HLS stream of N one-second segments (default 300)
# with ffmpeg and serves it with nginx on 127.0.0.1 (access log on). Rounds interleaved:
#   ttfb      `vodvault download URL --play`, then at once the first media segment through the
#             printed playback URL, against the same segment straight from nginx (curl's
#             time_starttransfer for both); then the same through the capped proxy below.
#             Target: <= 1.2x.
#   alone     the download (Encrypted) through a proxy capping each connection at 2 MiB/s.
#   played    the same download with ffmpeg reading the whole stream through the playback URL
#             (as fast as it can: `-c copy -f null`) from the moment the URL is printed.
#             Targets: bytes nginx served / stream size = 1.00 (each segment fetched once);
#             download time <= 1.1x alone.
# Prints medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

rounds=3 segments=300
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --segments) segments=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--segments N]" >&2; exit 2 ;;
  esac
done
for tool in ffmpeg nginx curl openssl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install ffmpeg nginx-light curl openssl)" >&2; exit 1; }
done

out=$PWD/bench-out
stream=$out/stream-$segments
mkdir -p "$out"
make_hls_stream "$stream" "$segments" "$out"
bytes=$(find "$stream" -name 'seg-*.ts' -printf '%s\n' | awk '{s += $1} END {print s}')
nseg=$(find "$stream" -name 'seg-*.ts' | wc -l)

cargo build --release --quiet -p vodvault-cli -p vodvault-keytool -p vodvault-benches
bin=$PWD/target/release
work=$(mktemp -d "$out/play.XXXX")
pids=()
cleanup() {
  stop_nginx "$work"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
start_nginx "$work" "$stream" "$port" "$work/access.log"
base="http://127.0.0.1:$port"
"$bin/vodvault-keytool" generate --app-id com.example.bench --out "$work/bench.vvkey" >/dev/null 2>&1
"$bin/vodvault-throttle-proxy" "127.0.0.1:$port" $((2 * 1024 * 1024)) > "$work/proxy.addr" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/proxy.addr" ] && break; sleep 0.1; done
capped="http://$(cat "$work/proxy.addr")/index.m3u8"

declare -A times
ttfb() { curl -s -o /dev/null -w '%{time_starttransfer}' "$1"; }

# start_play HOME SRC: `vodvault download SRC --play` in the background (pid in play_pid); the
# playback URL it prints in play_url.
start_play() {
  local home=$1 src=$2
  rm -rf "$home"
  "$bin/vodvault" --home "$home" --key-file "$work/bench.vvkey" download "$src" --mode encrypted --play \
    > "$home.out" 2> "$home.err" &
  play_pid=$!
  pids+=("$play_pid")
  for _ in $(seq 2000); do [ -s "$home.out" ] && break; sleep 0.005; done
  play_url=$(head -1 "$home.out")
}
# wait_done HOME: until the download in HOME says it completed.
wait_done() {
  for _ in $(seq 24000); do grep -q '^downloaded ' "$1.err" 2>/dev/null && return; sleep 0.005; done
  echo "the download did not complete" >&2; cat "$1.err" >&2; exit 1
}
served_bytes() { # bytes nginx served for segments, from its access log ("<uri> <status>")
  awk -v dir="$stream" '$2 ~ /^2/ && $1 ~ /seg-/ { print dir $1 }' "$work/access.log" | xargs -r stat -c %s |
    awk '{s += $1} END {print s + 0}'
}

echo "stream: $nseg segments, $bytes bytes, AES-128; origin: nginx on 127.0.0.1; $rounds rounds" >&2
for r in $(seq 1 "$rounds"); do
  # Time to first byte of the first media segment on a just-started download.
  record origin-ttfb "$(ttfb "$base/seg-0000.ts")"
  home=$work/home-ttfb
  start_play "$home" "$base/index.m3u8"
  record play-ttfb "$(ttfb "${play_url%index.m3u8}video/seg-00000.ts")"
  kill "$play_pid" 2>/dev/null; wait "$play_pid" 2>/dev/null || true
  # The same through the proxy capping each connection at 2 MiB/s (a network, not a memcpy).
  record origin-ttfb-capped "$(ttfb "${capped%index.m3u8}seg-0000.ts")"
  home=$work/home-ttfb-capped
  start_play "$home" "$capped"
  record play-ttfb-capped "$(ttfb "${play_url%index.m3u8}video/seg-00000.ts")"
  kill "$play_pid" 2>/dev/null; wait "$play_pid" 2>/dev/null || true
  rm -rf "$work"/home-ttfb*

  # Through the capped proxy: alone, then with a player reading everything.
  home=$work/home-alone
  t0=$(now)
  "$bin/vodvault" --home "$home" --key-file "$work/bench.vvkey" download "$capped" --mode encrypted >/dev/null
  record alone "$(echo "$(now) - $t0" | bc -l)"
  rm -rf "$home"

  : > "$work/access.log"; kill -USR1 "$(cat "$work/nginx.pid")"   # reopen the log
  home=$work/home-played
  t0=$(now)
  start_play "$home" "$capped"
  ffmpeg -hide_banner -loglevel error -allowed_extensions ALL -i "$play_url" -map 0 -c copy -f null - &
  ff=$!
  wait_done "$home"
  record played "$(echo "$(now) - $t0" | bc -l)"
  wait "$ff" || { echo "ffmpeg failed reading the playback URL" >&2; exit 1; }
  kill "$play_pid" 2>/dev/null; wait "$play_pid" 2>/dev/null || true
  sleep 0.2
  record fetched "$(awk -v s="$(served_bytes)" -v b="$bytes" 'BEGIN { printf "%.4f", s / b }')"
  rm -rf "$home"*
  echo "round $r/$rounds done" >&2
done

o=$(m origin-ttfb) p=$(m play-ttfb) a=$(m alone) pl=$(m played) f=$(m fetched)
printf '\n%-62s %10s  %s\n' "first media segment, time to first byte (median)" "ms" "ratio"
printf '%-62s %10.2f\n' "curl straight to nginx" "$(echo "$o * 1000" | bc -l)"
printf '%-62s %10.2f  %sx origin\n' "curl through play on a just-started download" "$(echo "$p * 1000" | bc -l)" "$(ratio "$p" "$o")"
oc=$(m origin-ttfb-capped) pc=$(m play-ttfb-capped)
printf '%-62s %10.2f\n' "curl straight to the origin, 2 MiB/s per connection" "$(echo "$oc * 1000" | bc -l)"
printf '%-62s %10.2f  %sx origin\n' "curl through play on a just-started download from it" "$(echo "$pc * 1000" | bc -l)" "$(ratio "$pc" "$oc")"
printf '\n%-62s %10s  %s\n' "Encrypted download, each connection capped at 2 MiB/s" "median s" "ratio"
printf '%-62s %10.2f\n' "alone" "$a"
printf '%-62s %10.2f  %sx alone\n' "with ffmpeg reading the whole stream through play meanwhile" "$pl" "$(ratio "$pl" "$a")"
printf '%-62s %10s\n' "bytes nginx served / stream size, with the player" "$f"

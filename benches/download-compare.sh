#!/usr/bin/env bash
# Download speed of vodvault against the I/O floor and its peers, in the same run.
#
#   benches/download-compare.sh [--rounds N] [--segments N] [--no-capped] [--no-peers]
#
# Makes (once, cached in bench-out/) an AES-128 HLS stream of N one-second segments (default 600,
# ~145 MB) with ffmpeg, serves it with nginx on 127.0.0.1, and times, rounds interleaved:
#   curl      one curl process fetching every segment one after another (the I/O floor: no
#             decryption, no storage)
#   normal    vodvault download --mode normal      (decrypt, check, store, commit durably)
#   encrypted vodvault download --mode encrypted   (decrypt, check, seal, store, commit)
#   yt-dlp    yt-dlp --concurrent-fragments 8 (native HLS downloader)
#   ffmpeg    ffmpeg -i URL -c copy
# and prints medians, ratios and vodvault's peak RSS. Then the same vodvault downloads through a
# proxy capping every connection at 2 MiB/s, against the bound bytes / (connections × 2 MiB/s).
# Targets: encrypted <= 2x curl; encrypted within 5% of normal; capped within 10% of the bound;
# peak RSS <= 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

rounds=5 segments=600 capped=1 peers=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --segments) segments=$2; shift 2 ;;
    --no-capped) capped=0; shift ;;
    --no-peers) peers=0; shift ;;
    *) echo "usage: $0 [--rounds N] [--segments N] [--no-capped] [--no-peers]" >&2; exit 2 ;;
  esac
done
for tool in ffmpeg nginx curl openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install ffmpeg nginx-light curl openssl)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 1; }
if [ "$peers" = 1 ] && ! command -v yt-dlp >/dev/null; then
  echo "yt-dlp not found (pip install yt-dlp pycryptodomex): skipping it" >&2
fi

out=$PWD/bench-out
stream=$out/stream-$segments
mkdir -p "$out"

# --- the stream ----------------------------------------------------------------------------------
make_hls_stream "$stream" "$segments" "$out"
bytes=$(find "$stream" -name 'seg-*.ts' -printf '%s\n' | awk '{s += $1} END {print s}')
nseg=$(find "$stream" -name 'seg-*.ts' | wc -l)

# --- binaries, origin ------------------------------------------------------------------------------
cargo build --release --quiet -p vodvault-cli -p vodvault-keytool -p vodvault-benches
bin=$PWD/target/release
work=$(mktemp -d "$out/run.XXXX")
cleanup() {
  stop_nginx "$work"
  [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
start_nginx "$work" "$stream" "$port"
base="http://127.0.0.1:$port"
url="$base/index.m3u8"
"$bin/vodvault-keytool" generate --app-id com.example.bench --out "$work/bench.vvkey" >/dev/null 2>&1
for i in $(seq 0 $((nseg - 1))); do printf 'url = "%s/seg-%04d.ts"\noutput = "/dev/null"\n' "$base" "$i"; done > "$work/curl.cfg"

declare -A times rss

echo "stream: $nseg segments, $bytes bytes, AES-128; origin: nginx $(nginx -v 2>&1 | cut -d/ -f2) on 127.0.0.1; $rounds rounds" >&2
for r in $(seq 1 "$rounds"); do
  t0=$(now); curl -s --fail --config "$work/curl.cfg"; t1=$(now); record curl "$(echo "$t1 - $t0" | bc -l)"
  run_vodvault normal normal "$url"
  run_vodvault encrypted encrypted "$url"
  if [ "$peers" = 1 ]; then
    if command -v yt-dlp >/dev/null; then
      t0=$(now)
      yt-dlp --quiet --no-warnings --no-cache-dir --fixup never --downloader m3u8:native --concurrent-fragments 8 \
        -o "$work/ytdlp.ts" "$url"
      t1=$(now); record yt-dlp "$(echo "$t1 - $t0" | bc -l)"; rm -f "$work"/ytdlp*
    fi
    t0=$(now); ffmpeg -hide_banner -loglevel error -y -i "$url" -c copy "$work/ffmpeg.ts"; t1=$(now)
    record ffmpeg "$(echo "$t1 - $t0" | bc -l)"; rm -f "$work/ffmpeg.ts"
  fi
  echo "round $r/$rounds: curl ${times[curl]##* } normal ... done" >/dev/null
  echo "round $r/$rounds done" >&2
done

curl_m=$(m curl) normal_m=$(m normal) enc_m=$(m encrypted)
rss_max=$(echo "${rss[normal]} ${rss[encrypted]}" | tr ' ' '\n' | grep -v '^$' | sort -n | tail -1)
printf '\n%-42s %9s  %s\n' "loopback, $nseg segments, $((bytes / 1000000)) MB" "median s" "ratio"
printf '%-42s %9.2f  %s\n' "curl, every segment in sequence (floor)" "$curl_m" "1.00"
printf '%-42s %9.2f  %sx curl\n' "vodvault --mode normal (6 connections)" "$normal_m" "$(ratio "$normal_m" "$curl_m")"
printf '%-42s %9.2f  %sx curl, %sx normal\n' "vodvault --mode encrypted (6 connections)" "$enc_m" "$(ratio "$enc_m" "$curl_m")" "$(ratio "$enc_m" "$normal_m")"
if [ -n "${times[yt-dlp]:-}" ]; then
  y=$(m yt-dlp); printf '%-42s %9.2f  %sx vodvault encrypted\n' "yt-dlp --concurrent-fragments 8" "$y" "$(ratio "$y" "$enc_m")"
fi
if [ -n "${times[ffmpeg]:-}" ]; then
  f=$(m ffmpeg); printf '%-42s %9.2f  %sx vodvault encrypted\n' "ffmpeg -i URL -c copy" "$f" "$(ratio "$f" "$enc_m")"
fi
printf '%-42s %9s\n' "vodvault peak RSS (max of all rounds)" "$((rss_max / 1024)) MiB"

if [ "$capped" = 1 ]; then
  cap=$((2 * 1024 * 1024))
  "$bin/vodvault-throttle-proxy" "127.0.0.1:$port" "$cap" > "$work/proxy.addr" &
  proxy_pid=$!
  for _ in $(seq 50); do [ -s "$work/proxy.addr" ] && break; sleep 0.1; done
  purl="http://$(cat "$work/proxy.addr")/index.m3u8"
  crounds=$(( rounds < 3 ? rounds : 3 ))
  for r in $(seq 1 "$crounds"); do
    run_vodvault capped-normal normal "$purl"
    run_vodvault capped-encrypted encrypted "$purl"
    echo "capped round $r/$crounds done" >&2
  done
  bound=$(awk -v b="$bytes" -v c="$cap" 'BEGIN { printf "%.2f", b / (6 * c) }')
  cn=$(m capped-normal) ce=$(m capped-encrypted)
  printf '\n%-42s %9s  %s\n' "every connection capped at 2 MiB/s" "median s" "ratio"
  printf '%-42s %9.2f\n' "bound: bytes / (6 connections x 2 MiB/s)" "$bound"
  printf '%-42s %9.2f  %sx bound\n' "vodvault --mode normal" "$cn" "$(ratio "$cn" "$bound")"
  printf '%-42s %9.2f  %sx bound, %sx normal\n' "vodvault --mode encrypted" "$ce" "$(ratio "$ce" "$bound")" "$(ratio "$ce" "$cn")"
fi

#!/usr/bin/env bash
# DASH download speed of vodvault against the I/O floor and yt-dlp, in the same run.
#
#   benches/dash-compare.sh [--rounds N] [--segments N]
#
# Makes (once, cached in bench-out/) a DASH stream of N one-second segments per track (default
# 600: video 1.8 Mb/s and audio 96 kb/s, SegmentTemplate + SegmentTimeline, ~150 MB) with ffmpeg's
# dash muxer, serves it with nginx on 127.0.0.1, and times, rounds interleaved:
#   curl       one curl process fetching the MPD and every initialization and media segment of
#              both tracks one after another (the I/O floor: no parsing, no storage)
#   encrypted  vodvault download --mode encrypted (plan from the MPD, check, seal, store, commit)
#   normal     vodvault download --mode normal
#   yt-dlp     yt-dlp -f bv,ba --concurrent-fragments 8 (its native DASH downloader, both tracks)
# and prints medians, ratios and vodvault's peak RSS.
# Targets (issue 12): encrypted <= 1.5x curl; peak RSS <= 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

rounds=5 segments=600
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --segments) segments=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--segments N]" >&2; exit 2 ;;
  esac
done
for tool in ffmpeg nginx curl; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install ffmpeg nginx-light curl)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 1; }
command -v yt-dlp >/dev/null || echo "yt-dlp not found (pip install yt-dlp): skipping it" >&2

out=$PWD/bench-out
stream=$out/dash-$segments
mkdir -p "$out"
make_dash_stream "$stream" "$segments"
files=$(cd "$stream" && ls init-*.m4s chunk-*.m4s)
bytes=$(cd "$stream" && cat $files | wc -c)
nfiles=$(echo "$files" | wc -l)

cargo build --release --quiet -p vodvault-cli -p vodvault-keytool
bin=$PWD/target/release
work=$(mktemp -d "$out/run.XXXX")
cleanup() { stop_nginx "$work"; rm -rf "$work"; }
trap cleanup EXIT
port=$(free_port)
start_nginx "$work" "$stream" "$port"
base="http://127.0.0.1:$port"
url="$base/manifest.mpd"
"$bin/vodvault-keytool" generate --app-id com.example.bench --out "$work/bench.vvkey" >/dev/null 2>&1
{ printf 'url = "%s"\noutput = "/dev/null"\n' "$url"
  for f in $files; do printf 'url = "%s/%s"\noutput = "/dev/null"\n' "$base" "$f"; done; } > "$work/curl.cfg"

declare -A times rss

echo "stream: $segments s, $nfiles files (2 tracks), $bytes bytes; origin: nginx on 127.0.0.1; $rounds rounds" >&2
for r in $(seq 1 "$rounds"); do
  t0=$(now); curl -s --fail --config "$work/curl.cfg"; t1=$(now); record curl "$(echo "$t1 - $t0" | bc -l)"
  run_vodvault encrypted encrypted "$url"
  run_vodvault normal normal "$url"
  if command -v yt-dlp >/dev/null; then
    t0=$(now)
    yt-dlp --quiet --no-warnings --no-cache-dir --fixup never --concurrent-fragments 8 -f 'bv,ba' \
      -o "$work/ytdlp.%(format_id)s.%(ext)s" "$url"
    t1=$(now); record yt-dlp "$(echo "$t1 - $t0" | bc -l)"; rm -f "$work"/ytdlp*
  fi
  echo "round $r/$rounds done" >&2
done

curl_m=$(m curl) enc_m=$(m encrypted) normal_m=$(m normal)
rss_max=$(echo "${rss[encrypted]} ${rss[normal]}" | tr ' ' '\n' | grep -v '^$' | sort -n | tail -1)
printf '\n%-46s %9s  %s\n' "loopback DASH, $segments s x 2 tracks, $((bytes / 1000000)) MB" "median s" "ratio"
printf '%-46s %9.2f  %s\n' "curl, MPD + every segment in sequence (floor)" "$curl_m" "1.00"
printf '%-46s %9.2f  %sx curl\n' "vodvault --mode encrypted (6 connections)" "$enc_m" "$(ratio "$enc_m" "$curl_m")"
printf '%-46s %9.2f  %sx curl\n' "vodvault --mode normal (6 connections)" "$normal_m" "$(ratio "$normal_m" "$curl_m")"
if [ -n "${times[yt-dlp]:-}" ]; then
  y=$(m yt-dlp); printf '%-46s %9.2f  %sx curl, %sx vodvault encrypted\n' "yt-dlp -f bv,ba --concurrent-fragments 8" "$y" "$(ratio "$y" "$curl_m")" "$(ratio "$y" "$enc_m")"
fi
printf '%-46s %9s\n' "vodvault peak RSS (max of all rounds)" "$((rss_max / 1024)) MiB"

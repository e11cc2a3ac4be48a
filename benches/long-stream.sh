#!/usr/bin/env bash
# A 6-hour stream: 10,800 two-second segments against the 600-segment case, in the same run.
#
#   benches/long-stream.sh [--rounds N] [--segments N] [--short N] [--bytes B]
#
# Makes (once, cached in bench-out/) two synthetic HLS streams of small MPEG-TS segments (null
# packets, B bytes each, default 2,256: the per-segment costs dominate, not the bytes), N (10,800)
# and SHORT (600) segments long, serves them with nginx on 127.0.0.1 (access log with times) and
# measures, medians over the rounds:
#   prepare    `vodvault prepare` of the long playlist (target <= 1 s), and of the short one
#   download   `vodvault download --mode encrypted` of each: time per segment, long / short
#              (target <= 1.2x), from nginx's log (first to last segment served, so the fixed
#              costs of a run do not flatter the long one); peak RSS of each (target <= 32 MiB,
#              and flat: long / short). The segments are tiny, so RSS here is the per-segment
#              state, not buffers: real segments (README "Downloading") add their buffers.
#   resume     the long download killed (SIGKILL) half-way, then `vodvault resume`: time from the
#              process start to its first segment request (target <= 1 s), what it fetched
#              again, and how often it fetched the playlist
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

rounds=3 segments=10800 short=600 seg_bytes=2256
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --segments) segments=$2; shift 2 ;;
    --short) short=$2; shift 2 ;;
    --bytes) seg_bytes=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--segments N] [--short N] [--bytes B]" >&2; exit 2 ;;
  esac
done
for tool in nginx python3 bc; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install nginx-light python3 bc)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 1; }

out=$PWD/bench-out
mkdir -p "$out"
# make_stream DIR N: N segments of seg_bytes bytes of MPEG-TS null packets, each file different
# (its index in the first payload), and a VOD playlist of 2-second segments.
make_stream() {
  [ -f "$1/index.m3u8" ] && return 0
  echo "making a $2-segment synthetic stream in $1 (once)..." >&2
  rm -rf "$1" && mkdir -p "$1"
  python3 - "$1" "$2" "$seg_bytes" <<'PY'
import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
packets = max(1, size // 188)
lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0",
         "#EXT-X-PLAYLIST-TYPE:VOD"]
for i in range(n):
    body = bytearray()
    for p in range(packets):
        payload = (b"%08d" % i if p == 0 else b"") + bytes(184)
        body += b"\x47\x1f\xff\x10" + payload[:184]
    with open(os.path.join(d, "seg-%05d.ts" % i), "wb") as f:
        f.write(body)
    lines += ["#EXTINF:2.000,", "seg-%05d.ts" % i]
lines.append("#EXT-X-ENDLIST")
with open(os.path.join(d, "index.m3u8"), "w") as f:
    f.write("\n".join(lines) + "\n")
PY
}
long_dir=$out/long-$segments-$seg_bytes short_dir=$out/long-$short-$seg_bytes
make_stream "$long_dir" "$segments"
make_stream "$short_dir" "$short"

cargo build --release --quiet -p vodvault-cli -p vodvault-keytool
bin=$PWD/target/release
work=$(mktemp -d "$out/long.XXXX")
cleanup() {
  stop_nginx "$work"
  rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
start_nginx "$work" "$out" "$port" "$work/access.log" '$msec $uri $status'
base="http://127.0.0.1:$port"
declare -A path=([long]=${long_dir##*/} [short]=${short_dir##*/})
"$bin/vodvault-keytool" generate --app-id com.example.bench --out "$work/bench.vvkey" >/dev/null 2>&1
vv() { exec "$bin/vodvault" --home "$work/home" --key-file "$work/bench.vvkey" "$@"; }
reopen_log() { : > "$work/access.log"; kill -USR1 "$(cat "$work/nginx.pid")"; sleep 0.05; }

declare -A times rss
echo "streams: $segments and $short segments of $seg_bytes bytes; nginx on 127.0.0.1; $rounds rounds" >&2
for r in $(seq 1 "$rounds"); do
  for which in long short; do
    url="$base/${path[$which]}/index.m3u8"
    rm -rf "$work/home"   # each measurement in a new vault
    t0=$(now); (vv prepare "$url" >/dev/null); t1=$(now); record "prepare-$which" "$(echo "$t1 - $t0" | bc -l)"
    rm -rf "$work/home"
    reopen_log
    t0=$(now)
    /usr/bin/time -f '%M' -o "$work/rss" "$bin/vodvault" --home "$work/home" --key-file "$work/bench.vvkey" \
      download "$url" --mode encrypted >/dev/null
    t1=$(now); record "download-$which" "$(echo "$t1 - $t0" | bc -l)"
    rss[$which]+="$(cat "$work/rss") "
    # Seconds per segment from the origin's side: first to last segment served.
    record "per-$which" "$(awk '/\.ts 200$/ { if (!n++) f = $1; l = $1 } END { printf "%.9f", (l - f) / (n - 1) }' "$work/access.log")"
  done

  # Kill the long download half-way, then resume it.
  rm -rf "$work/home"
  reopen_log
  (vv download "$base/${path[long]}/index.m3u8" --mode encrypted >/dev/null 2>&1) &
  pid=$!
  for _ in $(seq 2000); do
    [ "$(grep -c '\.ts 200$' "$work/access.log" || true)" -ge $((segments / 2)) ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  kill -9 "$pid" 2>/dev/null || { echo "the download finished before it could be killed" >&2; exit 1; }
  wait "$pid" 2>/dev/null || true
  before=$(grep -c '\.ts 200$' "$work/access.log" || true)
  id=$( (vv list --json) | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
  sleep 0.2
  mark=$(wc -l < "$work/access.log")
  t0=$(now)
  (vv resume "$id" >/dev/null)
  tail -n +"$((mark + 1))" "$work/access.log" > "$work/after.log"
  first=$(awk '/\.ts 200$/ {print $1; exit}' "$work/after.log")
  fetched=$(grep -c '\.ts 200$' "$work/after.log" || true)
  record resume-first "$(echo "$first - $t0" | bc -l)"
  record resume-segments "$fetched"
  record resume-again "$((before + fetched - segments))"
  record resume-playlists "$(grep -c '\.m3u8 ' "$work/after.log" || true)"
  (vv verify "$id" >/dev/null) || { echo "verify failed after the resume" >&2; exit 1; }
  echo "round $r/$rounds done (killed after $before segments)" >&2
done

pl=$(m prepare-long) ps=$(m prepare-short) dl=$(m download-long) ds=$(m download-short)
per_long=$(awk -v t="$(m per-long)" 'BEGIN { printf "%.1f", t * 1e6 }')
per_short=$(awk -v t="$(m per-short)" 'BEGIN { printf "%.1f", t * 1e6 }')
rl=$(echo "${rss[long]}" | tr ' ' '\n' | grep -v '^$' | sort -n | tail -1)
rs=$(echo "${rss[short]}" | tr ' ' '\n' | grep -v '^$' | sort -n | tail -1)
first=$(m resume-first)
printf '\n%-52s %12s %12s  %s\n' "$segments vs $short segments of $seg_bytes B, Encrypted" "long" "short" "ratio / target"
printf '%-52s %11.3fs %11.3fs  %sx; long <= 1 s: %s\n' "vodvault prepare (median)" "$pl" "$ps" "$(ratio "$pl" "$ps")" \
  "$(awk -v t="$pl" 'BEGIN { print (t <= 1.0) ? "met" : "MISSED" }')"
printf '%-52s %11.2fs %11.2fs\n' "vodvault download --mode encrypted (median)" "$dl" "$ds"
printf '%-52s %10s µs %10s µs  %sx; <= 1.2x: %s\n' "  per segment (origin's log, first to last)" "$per_long" "$per_short" "$(ratio "$per_long" "$per_short")" \
  "$(awk -v a="$per_long" -v b="$per_short" 'BEGIN { print (a / b <= 1.2) ? "met" : "MISSED" }')"
printf '%-52s %9s MiB %9s MiB  %sx; <= 32 MiB: %s\n' "  peak RSS (max of the rounds)" "$((rl / 1024))" "$((rs / 1024))" \
  "$(ratio "$rl" "$rs")" "$( [ "$rl" -le $((32 * 1024)) ] && echo met || echo MISSED)"
printf '%-52s %11.3fs  <= 1 s: %s\n' "resume after kill -9 half-way: to first request" "$first" \
  "$(awk -v t="$first" 'BEGIN { print (t <= 1.0) ? "met" : "MISSED" }')"
printf '%-52s %12s  (median; segments fetched again: %s; playlist requests: %s)\n' "  segments it fetched" \
  "$(m resume-segments)" "$(m resume-again)" "$(m resume-playlists)"

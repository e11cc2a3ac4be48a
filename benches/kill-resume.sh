#!/usr/bin/env bash
# What a kill -9 costs: segments fetched again after killing `vodvault download --parallel 8`
# at random moments, against the requests that can be in flight at a kill (8).
#
#   benches/kill-resume.sh [--rounds N] [--kills K] [--segments N]
#
# Uses the AES-128 HLS stream of benches/download-compare.sh (made once with ffmpeg, cached in
# bench-out/), served by nginx on 127.0.0.1 with an access log. Each round downloads it in each
# mode, killing the process (SIGKILL) K times at random moments (0-40 ms after segments start
# arriving in each run)
# and resuming it from the catalog, then checks every stored segment against the source and
# counts the segment requests nginx served. Prints, per mode, the segments fetched again per
# kill (median and worst over the rounds). Target: at most 8 per kill (the requests in flight).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

rounds=5 kills=4 segments=600
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --kills) kills=$2; shift 2 ;;
    --segments) segments=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--kills K] [--segments N]" >&2; exit 2 ;;
  esac
done
for tool in ffmpeg nginx openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install ffmpeg nginx-light openssl)" >&2; exit 1; }
done

out=$PWD/bench-out
stream=$out/stream-$segments
mkdir -p "$out"
make_hls_stream "$stream" "$segments" "$out"   # the same stream as download-compare.sh
nseg=$(find "$stream" -name 'seg-*.ts' | wc -l)

cargo build --release --quiet -p vodvault-cli -p vodvault-keytool
bin=$PWD/target/release
work=$(mktemp -d "$out/kill.XXXX")
cleanup() {
  stop_nginx "$work"
  rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
start_nginx "$work" "$stream" "$port" "$work/access.log"
url="http://127.0.0.1:$port/index.m3u8"
"$bin/vodvault-keytool" generate --app-id com.example.bench --out "$work/bench.vvkey" >/dev/null 2>&1
key=$(xxd -p "$stream/k.key")

# Decrypts the source segment i (AES-128-CBC; the playlist's IV, or the media sequence number).
iv=$(grep -o 'IV=0x[0-9a-fA-F]*' "$stream/index.m3u8" | head -1 | cut -c6- || true)
source_plain() {
  openssl aes-128-cbc -d -K "$key" -iv "${iv:-$(printf '%032x' "$1")}" -in "$(printf '%s/seg-%04d.ts' "$stream" "$1")"
}

declare -A per_kill
echo "stream: $nseg segments; $rounds rounds of $kills kills per mode" >&2
for r in $(seq 1 "$rounds"); do
  for mode in normal encrypted; do
    home="$work/home-$mode"
    rm -rf "$home"
    : > "$work/access.log"
    kill -USR1 "$(cat "$work/nginx.pid")"   # reopen the log
    # (`exec`: in the background, $! must be vodvault itself, not a subshell, for kill -9.)
    vv() { exec "$bin/vodvault" --home "$home" --key-file "$work/bench.vvkey" "$@"; }
    id= kill_log=
    for k in $(seq 1 "$kills"); do
      if [ -z "$id" ]; then
        (vv download "$url" --mode "$mode" --parallel 8 >/dev/null 2>&1) &
      else
        (vv resume "$id" >/dev/null 2>&1) &
      fi
      pid=$!
      # Once this run has segments coming in, a random moment in the next 0-40 ms.
      seen=$(grep -c '\.ts 200$' "$work/access.log" || true)
      for _ in $(seq 500); do
        [ "$(grep -c '\.ts 200$' "$work/access.log" || true)" -gt $((seen + 8)) ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.005
      done
      sleep "0.$(printf '%03d' $((RANDOM % 40)))"
      if kill -9 "$pid" 2>/dev/null; then state=killed; else state=finished; fi
      kill_log+="$state@$(grep -c '\.ts 200$' "$work/access.log" || true) "
      wait "$pid" 2>/dev/null || true
      # (A kill before the asset exists leaves nothing: the next run starts the download again.)
      [ -n "$id" ] || id=$( (vv list --json) | python3 -c 'import json, sys; a = json.load(sys.stdin); print(a[0]["id"] if a else "")')
    done
    [ -n "$id" ] || { (vv download "$url" --mode "$mode" --parallel 8 >/dev/null); id=$( (vv list --json) | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])'); }
    (vv resume "$id" >/dev/null 2>&1) || true
    # Every stored segment is the source's plaintext (Normal mode: the file itself).
    if [ "$mode" = normal ]; then
      for i in 0 $((nseg / 2)) $((nseg - 1)); do
        cmp -s <(source_plain "$i") "$(printf '%s/assets/%s/video/seg-%05d.ts' "$home" "$id" "$i")" \
          || { echo "segment $i differs" >&2; exit 1; }
      done
    fi
    (vv verify "$id" >/dev/null) || { echo "verify failed" >&2; exit 1; }
    sleep 0.2
    served=$(grep -c '^/seg-.*\.ts ' "$work/access.log" || true)
    again=$((served - nseg))
    echo "  at kills: $kill_log" >&2
    per_kill[$mode]+="$(awk -v a="$again" -v k="$kills" 'BEGIN { printf "%.2f", a / k }') "
    echo "round $r $mode: $served segment requests ($(grep '\.ts ' "$work/access.log" | awk '{print $2}' | sort | uniq -c | tr -s ' ' | tr '\n' ' ')) for $nseg segments, $again again over $kills kills" >&2
  done
done

worst() { tr ' ' '\n' | grep -v '^$' | sort -g | tail -1; }
printf '\n%-34s %8s %8s  %s\n' "segments fetched again per kill" "median" "worst" "target"
for mode in normal encrypted; do
  printf '%-34s %8s %8s  <= 8 (requests in flight)\n' "vodvault --mode $mode --parallel 8" \
    "$(echo "${per_kill[$mode]}" | median)" "$(echo "${per_kill[$mode]}" | worst)"
done

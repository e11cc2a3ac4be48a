#!/usr/bin/env bash
# Progressive download speed of vodvault against curl, in the same run.
#
#   benches/progressive-compare.sh [--rounds N] [--size-mib N] [--pieces 1M,4M,...] [--no-capped]
#
# Makes (once, cached in bench-out/) a --size-mib MiB MP4 (default 1024: an ffmpeg-made film
# repeated to size inside one mdat box), serves it with nginx on 127.0.0.1, and times, rounds
# interleaved:
#   curl       curl -o FILE (one connection, writing the file; no sync)
#   normal     vodvault download --mode normal     (pieces in parallel, checked, synced, committed)
#   encrypted  vodvault download --mode encrypted  (the same, sealed)
# for each piece size in --pieces (default 4M; 0 = one connection). Target: <= 1.3x curl. Then,
# through a proxy capping every connection at 2 MiB/s, the Encrypted download against the bound
# size / (6 connections x 2 MiB/s). Target: within 10%.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

rounds=3 size_mib=1024 pieces=4M capped=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --pieces) pieces=$2; shift 2 ;;
    --no-capped) capped=0; shift ;;
    *) echo "usage: $0 [--rounds N] [--size-mib N] [--pieces 1M,4M,...] [--no-capped]" >&2; exit 2 ;;
  esac
done
for tool in ffmpeg nginx curl python3 bc; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install ffmpeg nginx-light curl bc)" >&2; exit 1; }
done

out=$PWD/bench-out
film=$out/film-$size_mib.mp4
mkdir -p "$out"
if [ ! -f "$film" ]; then
  echo "making a $size_mib MiB MP4 in $film (once)..." >&2
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=25" -t 20 -c:v libx264 \
    -preset ultrafast -b:v 4M "$out/seed.mp4"
  python3 - "$out/seed.mp4" "$film" "$size_mib" <<'PY'
import struct, sys
seed, dest, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
payload = open(seed, "rb").read()
size = mib * 1024 * 1024 - 36
with open(dest, "wb") as f:
    f.write(struct.pack(">I", 20) + b"ftypisom\x00\x00\x02\x00isom")
    f.write(struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", size + 16))
    left = size
    while left > 0:
        f.write(payload[: min(left, len(payload))])
        left -= min(left, len(payload))
PY
fi
bytes=$(stat -c %s "$film")

cargo build --release --quiet -p vodvault-cli -p vodvault-keytool -p vodvault-benches
bin=$PWD/target/release
work=$(mktemp -d "$out/prog.XXXX")
proxy_pid=
cleanup() {
  stop_nginx "$work"
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
start_nginx "$work" "$out" "$port"
url="http://127.0.0.1:$port/film-$size_mib.mp4"
"$bin/vodvault-keytool" generate --app-id com.example.bench --out "$work/bench.vvkey" >/dev/null 2>&1

declare -A times
run_vodvault() { # label mode piece-size [url]
  local home="$work/home"
  rm -rf "$home"
  local t0; t0=$(now)
  "$bin/vodvault" --home "$home" --key-file "$work/bench.vvkey" --piece-size "$3" download "${4:-$url}" --mode "$2" >/dev/null
  record "$1" "$(echo "$(now) - $t0" | bc -l)"
  rm -rf "$home"
}

echo "file: $bytes bytes; origin: nginx on 127.0.0.1; $rounds rounds; pieces: $pieces" >&2
for r in $(seq 1 "$rounds"); do
  t0=$(now); curl -s --fail -o "$work/curl.mp4" "$url"; record curl "$(echo "$(now) - $t0" | bc -l)"; rm -f "$work/curl.mp4"
  for p in ${pieces//,/ }; do
    run_vodvault "normal-$p" normal "$p"
    run_vodvault "encrypted-$p" encrypted "$p"
  done
  echo "round $r/$rounds done" >&2
done

c=$(m curl)
printf '\n%-46s %9s  %s\n' "loopback, $((bytes / 1048576)) MiB MP4" "median s" "ratio"
printf '%-46s %9.2f  %s\n' "curl -o FILE (one connection)" "$c" "1.00"
for p in ${pieces//,/ }; do
  n=$(m "normal-$p") e=$(m "encrypted-$p")
  printf '%-46s %9.2f  %sx curl\n' "vodvault --mode normal, pieces of $p" "$n" "$(ratio "$n" "$c")"
  printf '%-46s %9.2f  %sx curl\n' "vodvault --mode encrypted, pieces of $p" "$e" "$(ratio "$e" "$c")"
done

if [ "$capped" = 1 ]; then
  cap=$((2 * 1024 * 1024))
  "$bin/vodvault-throttle-proxy" "127.0.0.1:$port" "$cap" > "$work/proxy.addr" &
  proxy_pid=$!
  for _ in $(seq 50); do [ -s "$work/proxy.addr" ] && break; sleep 0.1; done
  purl="http://$(cat "$work/proxy.addr")/film-$size_mib.mp4"
  p=${pieces%%,*}
  for r in $(seq 1 "$rounds"); do run_vodvault capped encrypted "$p" "$purl"; echo "capped round $r/$rounds done" >&2; done
  bound=$(awk -v b="$bytes" -v c="$cap" 'BEGIN { printf "%.2f", b / (6 * c) }')
  ce=$(m capped)
  printf '\n%-46s %9s  %s\n' "every connection capped at 2 MiB/s" "median s" "ratio"
  printf '%-46s %9.2f\n' "bound: size / (6 connections x 2 MiB/s)" "$bound"
  printf '%-46s %9.2f  %sx bound\n' "vodvault --mode encrypted, pieces of $p" "$ce" "$(ratio "$ce" "$bound")"
fi

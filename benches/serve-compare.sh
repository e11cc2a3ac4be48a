#!/usr/bin/env bash
# Playback serving: vodvault's decrypt-and-play server against nginx serving the same plaintext,
# in the same run.
#
#   benches/serve-compare.sh [--rounds N] [--size-mib N] [--seeks N] [--clients N] [--client-mib N]
#
# Makes (once, cached in bench-out/) a file of --size-mib MiB (default 1024), downloads it into a
# vault in Encrypted mode (64 KiB sealed chunks), serves it with `vodvault serve`, and measures,
# rounds interleaved:
#   throughput  curl fetching the whole file over loopback: vodvault vs nginx (sendfile)
#   seeks       time to first byte of 64 KiB Range requests at random offsets on a kept-alive
#               connection: p50 and p99, vodvault and nginx
#   memory      peak RSS of `vodvault serve` after serving everything, for this asset and for one
#               a quarter of its size (flat in the asset's size)
#   clients     --clients (16) curl processes at once, each reading a different asset of
#               --client-mib (64) MiB from a different offset (half of it, in one Range request),
#               all from one `vodvault serve`, against nginx serving the same plaintext ranges:
#               aggregate throughput, the slowest client against the median one, and the peak
#               RSS of that `vodvault serve`
# Targets (issue 14): throughput >= 0.9x nginx; seek p99 <= 1.5x nginx's; 16 clients >= 0.8x
# nginx's aggregate, slowest >= 0.5x the median; RSS <= 32 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

rounds=5 size_mib=1024 seeks=400 clients=16 client_mib=64
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --seeks) seeks=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --client-mib) client_mib=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--size-mib N] [--seeks N] [--clients N] [--client-mib N]" >&2; exit 2 ;;
  esac
done
for tool in nginx curl python3 bc; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install nginx-light curl python3 bc)" >&2; exit 1; }
done

out=$PWD/bench-out
mkdir -p "$out"
cargo build --release --quiet -p vodvault-cli -p vodvault-keytool
bin=$PWD/target/release
work=$(mktemp -d "$out/serve.XXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_nginx "$work"
  rm -rf "$work"
}
trap cleanup EXIT

# make_film PATH MIB: random bytes in an ISO BMFF shell (ftyp, then one mdat box), made once:
# vodvault stores only media.
make_film() {
  [ -f "$1" ] || { python3 -c 'import struct, sys; n = int(sys.argv[1]); sys.stdout.buffer.write(struct.pack(">I", 20) + b"ftypisom\0\0\2\0isom" + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", n + 16))' \
    $(($2 * 1024 * 1024 - 36)); head -c $(($2 * 1024 * 1024 - 36)) /dev/urandom; } > "$1"
}
files=()
for mib in $((size_mib / 4)) "$size_mib"; do
  f="$out/film-${mib}m.mp4"
  make_film "$f" "$mib"
  files+=("$f")
done
big=${files[1]}

port=$(free_port)
start_nginx "$work" "$out" "$port"
"$bin/vodvault-keytool" generate --app-id com.example.bench --out "$work/k.vvkey" >/dev/null 2>&1
vv=("$bin/vodvault" --home "$work/vault" --key-file "$work/k.vvkey")

serve() { # file -> starts `vodvault serve`, sets url and serve_pid
  local id
  id=$("${vv[@]}" download "http://127.0.0.1:$port/$(basename "$1")" --mode encrypted)
  "${vv[@]}" serve "$id" > "$work/url.$id" 2>/dev/null &
  serve_pid=$!
  pids+=("$serve_pid")
  for _ in $(seq 100); do [ -s "$work/url.$id" ] && break; sleep 0.05; done
  url=$(head -1 "$work/url.$id")
}
rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# Memory: the smaller asset first, fully served twice, then the big one.
serve "${files[0]}"
curl -s -o /dev/null "$url"; curl -s -o /dev/null "$url"
small_rss=$(rss_kib "$serve_pid")
kill "$serve_pid"
serve "$big"
vurl=$url
nurl="http://127.0.0.1:$port/$(basename "$big")"
bytes=$(stat -c %s "$big")

ours=() theirs=()
for r in $(seq 1 "$rounds"); do
  theirs+=("$(curl -s -o /dev/null -w '%{time_total}' "$nurl")")
  ours+=("$(curl -s -o /dev/null -w '%{time_total}' "$vurl")")
  echo "round $r/$rounds: nginx ${theirs[-1]} s, vodvault ${ours[-1]} s" >&2
done

seek_stats() { # url -> "p50 p99" in ms
  python3 - "$1" "$bytes" "$seeks" <<'PY'
import http.client, random, sys, time, urllib.parse
url, size, n = urllib.parse.urlsplit(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection(url.hostname, url.port)
rng = random.Random(42)
samples = []
for i in range(n + 20):
    off = rng.randrange(0, size - 65536)
    t = time.perf_counter()
    conn.request("GET", url.path, headers={"Range": f"bytes={off}-{off + 65535}"})
    resp = conn.getresponse()
    first = resp.read(1)
    dt = time.perf_counter() - t
    body = first + resp.read()
    assert resp.status == 206 and len(body) == 65536, (resp.status, len(body))
    if i >= 20:  # warm-up
        samples.append(dt * 1000)
samples.sort()
print("%.2f %.2f" % (samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1]))
PY
}
read -r v50 v99 < <(seek_stats "$vurl")
read -r n50 n99 < <(seek_stats "$nurl")

big_rss=$(rss_kib "$serve_pid")   # the peak over the whole file and the seeks
kill "$serve_pid"

# Many players at once: one `vodvault serve` for every client's asset, one curl per client.
cfiles=() cids=()
for i in $(seq 1 "$clients"); do
  f="$out/film-c$i-${client_mib}m.mp4"
  make_film "$f" "$client_mib"
  cfiles+=("$f")
  cids+=("$("${vv[@]}" download "http://127.0.0.1:$port/$(basename "$f")" --mode encrypted)")
done
"${vv[@]}" serve "${cids[@]}" > "$work/urls" 2>/dev/null &
many_pid=$!
pids+=("$many_pid")
for _ in $(seq 200); do [ "$(wc -l < "$work/urls")" -ge "$clients" ] && break; sleep 0.05; done
mapfile -t curls < "$work/urls"
span=$((client_mib * 1024 * 1024 / 2))
range_of() { # client index (0-based) -> "first-last": a different offset for each client
  local first=$(( ($1 * 2654435761 % 997) * (client_mib * 1024 * 1024 - span) / 997 ))
  echo "$first-$((first + span - 1))"
}
# All clients at once against URLs (one per client); prints the wall seconds, then each client's
# seconds, and fails on a short read.
all_at_once() {
  local -n urls=$1
  local t0 t1 i waiting=()
  t0=$(now)
  for i in $(seq 0 $((clients - 1))); do
    curl -s -o /dev/null -r "$(range_of "$i")" -w '%{time_total} %{size_download}\n' "${urls[$i]}" > "$work/client.$i" &
    waiting+=($!)
  done
  for i in "${waiting[@]}"; do wait "$i"; done
  t1=$(now)
  echo "$t1 - $t0" | bc -l
  for i in $(seq 0 $((clients - 1))); do
    read -r t n < "$work/client.$i"
    [ "$n" = "$span" ] || { echo "client $i read $n bytes, not $span" >&2; return 1; }
    echo "$t"
  done
}
nurls=()
for f in "${cfiles[@]}"; do nurls+=("http://127.0.0.1:$port/$(basename "$f")"); done
# The bytes are the same as nginx's for the first client.
cmp -s <(curl -s -r "$(range_of 0)" "${curls[0]}") <(curl -s -r "$(range_of 0)" "${nurls[0]}") \
  || { echo "vodvault served other bytes than the source" >&2; exit 1; }
agg_ours=() agg_theirs=() starved=()
for r in $(seq 1 "$rounds"); do
  all_at_once nurls > "$work/res"
  mapfile -t res < "$work/res"
  agg_theirs+=("$(awk -v w="${res[0]}" -v b="$((span * clients))" 'BEGIN { printf "%.3f", b / w / 1e9 }')")
  all_at_once curls > "$work/res"
  mapfile -t res < "$work/res"
  agg_ours+=("$(awk -v w="${res[0]}" -v b="$((span * clients))" 'BEGIN { printf "%.3f", b / w / 1e9 }')")
  # The slowest client's throughput against the median client's (times are inverse rates).
  starved+=("$(printf '%s\n' "${res[@]:1}" | sort -g | awk '{v[NR] = $1} END { printf "%.2f", v[int((NR + 1) / 2)] / v[NR] }')")
  echo "clients round $r/$rounds: nginx ${agg_theirs[-1]} GB/s, vodvault ${agg_ours[-1]} GB/s, slowest/median ${starved[-1]}" >&2
done
many_rss=$(rss_kib "$many_pid")

t_ours=$(printf '%s ' "${ours[@]}" | median)
t_theirs=$(printf '%s ' "${theirs[@]}" | median)
gbps() { awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.2f", b / t / 1e9 }'; }
printf '\nserving a %d MiB file over loopback (curl, median of %d)      GB/s\n' "$size_mib" "$rounds"
printf '%-52s %6s\n' "nginx (plaintext, sendfile)" "$(gbps "$t_theirs")"
printf '%-52s %6s   %sx nginx\n' "vodvault serve (Encrypted: decrypt+verify per chunk)" "$(gbps "$t_ours")" \
  "$(awk -v a="$t_theirs" -v b="$t_ours" 'BEGIN { printf "%.2f", a / b }')"
printf '\ntime to first byte of a 64 KiB Range at a random offset (%d requests)   p50 ms   p99 ms\n' "$seeks"
printf '%-52s %6s   %6s\n' "nginx" "$n50" "$n99"
printf '%-52s %6s   %6s   p99 %sx nginx\n' "vodvault" "$v50" "$v99" "$(ratio "$v99" "$n99")"
a_theirs=$(printf '%s ' "${agg_theirs[@]}" | median)
a_ours=$(printf '%s ' "${agg_ours[@]}" | median)
worst=$(printf '%s\n' "${starved[@]}" | sort -g | head -1)
printf '\n%d clients at once, each a different %d MiB asset from its own offset (median of %d)   GB/s\n' \
  "$clients" "$client_mib" "$rounds"
printf '%-52s %6s\n' "nginx (plaintext, sendfile), aggregate" "$a_theirs"
printf '%-52s %6s   %sx nginx\n' "vodvault serve (Encrypted), aggregate" "$a_ours" "$(ratio "$a_ours" "$a_theirs")"
printf '%-52s %6s   (worst round)\n' "vodvault: slowest client / median client" "$worst"
printf '\npeak RSS of vodvault serve: %d MiB asset %d MiB, %d MiB asset %d MiB, %d clients %d MiB\n' \
  $((size_mib / 4)) $((small_rss / 1024)) "$size_mib" $((big_rss / 1024)) "$clients" $((many_rss / 1024))

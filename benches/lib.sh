# Sourced by the comparison scripts in benches/: a free loopback port, nginx serving a directory on
# it (the origin, or the peer to beat), stopped by `stop_nginx`, the timing helpers, the test
# streams (HLS, DASH) and one timed `vodvault download`.

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_nginx WORK_DIR ROOT PORT [ACCESS_LOG [FORMAT]]: nginx (one worker, sendfile, long
# keep-alive) serving ROOT on 127.0.0.1:PORT, its pid in WORK_DIR/nginx.pid; with ACCESS_LOG,
# every request is logged there as FORMAT (default '$uri $status'; '$msec $uri $status' adds
# the time).
start_nginx() {
  local work=$1 root=$2 port=$3 log=${4:-} format=${5:-'$uri $status'}
  local access="access_log off;"
  [ -n "$log" ] && access="log_format uri_status '$format'; access_log $log uri_status;"
  cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  $access
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000; keepalive_timeout 60;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; video/mp4 mp4 m4s; application/dash+xml mpd; application/octet-stream key; }
  server { listen 127.0.0.1:$port; root $root; }
}
NGINX
  nginx -c "$work/nginx.conf"
}

# stop_nginx WORK_DIR
stop_nginx() {
  [ -f "$1/nginx.pid" ] && kill "$(cat "$1/nginx.pid")" 2>/dev/null || true
}

# Timing: `now` (seconds), `record LABEL SECONDS` into the caller's `declare -A times`, `m LABEL`
# its median, `ratio A B` (two decimals), `median` of numbers on stdin (spaces or lines).
now() { date +%s.%N; }
record() { times[$1]+="$2 "; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
m() { echo "${times[$1]}" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# make_hls_stream DIR SEGMENTS WORK: an AES-128 HLS stream of SEGMENTS one-second segments (640x360
# H.264 at 1.8 Mb/s and AAC, ~240 KB each) made by ffmpeg in DIR, once (kept while it exists);
# the key is DIR/k.key, with no IV attribute (implicit: the media sequence number).
make_hls_stream() {
  local dir=$1 segments=$2 work=$3
  [ -f "$dir/index.m3u8" ] && return 0
  echo "making a $segments-segment AES-128 HLS stream in $dir (once)..." >&2
  rm -rf "$dir" && mkdir -p "$dir"
  openssl rand 16 > "$dir/k.key"
  printf 'k.key\n%s\n' "$dir/k.key" > "$work/keyinfo-$segments"
  ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i "sine=frequency=440" \
    -t "$segments" -c:v libx264 -preset ultrafast -b:v 1800k -maxrate 1800k -bufsize 1800k -g 25 -keyint_min 25 \
    -sc_threshold 0 -c:a aac -b:a 96k -f hls -hls_time 1 -hls_playlist_type vod \
    -hls_key_info_file "$work/keyinfo-$segments" -hls_segment_filename "$dir/seg-%04d.ts" "$dir/index.m3u8"
}

# make_dash_stream DIR SEGMENTS: a DASH stream of SEGMENTS one-second segments per track (640x360
# H.264 at 1.8 Mb/s and AAC at 96 kb/s, SegmentTemplate with SegmentTimeline, ~240 KB a video
# segment) made by ffmpeg's dash muxer in DIR, once (kept while it exists).
make_dash_stream() {
  local dir=$1 segments=$2
  [ -f "$dir/manifest.mpd" ] && return 0
  echo "making a $segments-segment DASH stream in $dir (once)..." >&2
  rm -rf "$dir" && mkdir -p "$dir"
  ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i "sine=frequency=440" \
    -t "$segments" -map 0:v -map 1:a -c:v libx264 -preset ultrafast -b:v 1800k -maxrate 1800k -bufsize 1800k -g 25 \
    -keyint_min 25 -sc_threshold 0 -c:a aac -b:a 96k -f dash -seg_duration 1 -use_template 1 -use_timeline 1 \
    -adaptation_sets "id=0,streams=v id=1,streams=a" "$dir/manifest.mpd"
}

# run_vodvault LABEL MODE URL: one `vodvault download URL --mode MODE` into a fresh home under
# $work (key file $work/bench.vvkey, binaries in $bin), its time recorded under LABEL and its
# peak RSS (KiB) added to the caller's `declare -A rss`.
run_vodvault() {
  local label=$1 mode=$2 src=$3 home="$work/home-$1"
  rm -rf "$home"
  local t0; t0=$(now)
  /usr/bin/time -f '%M' -o "$work/rss" "$bin/vodvault" --home "$home" --key-file "$work/bench.vvkey" \
    download "$src" --mode "$mode" >/dev/null
  local t1; t1=$(now)
  record "$label" "$(echo "$t1 - $t0" | bc -l)"
  rss[$label]+="$(cat "$work/rss") "
  rm -rf "$home"
}

# Sourced by the comparison scripts in benches/: a free loopback port, and nginx serving a
# directory on it (the origin, or the peer to beat), stopped by `stop_nginx`.

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_nginx WORK_DIR ROOT PORT [ACCESS_LOG]: nginx (one worker, sendfile, long keep-alive)
# serving ROOT on 127.0.0.1:PORT, its pid in WORK_DIR/nginx.pid; with ACCESS_LOG, every request
# is logged there as "<uri> <status>".
start_nginx() {
  local work=$1 root=$2 port=$3 log=${4:-}
  local access="access_log off;"
  [ -n "$log" ] && access="log_format uri_status '\$uri \$status'; access_log $log uri_status;"
  cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  $access
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000; keepalive_timeout 60;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; video/mp4 mp4; application/octet-stream key; }
  server { listen 127.0.0.1:$port; root $root; }
}
NGINX
  nginx -c "$work/nginx.conf"
}

# stop_nginx WORK_DIR
stop_nginx() {
  [ -f "$1/nginx.pid" ] && kill "$(cat "$1/nginx.pid")" 2>/dev/null || true
}

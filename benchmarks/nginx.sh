# Sourced by the benchmark scripts: starts nginx-light on a free loopback port (1 worker, access
# log off), answering 200 "ok" when an Authorization header is present and 401 otherwise; sets
# $url and stops nginx (and removes its files) when the script exits.
command -v nginx >/dev/null || { echo "run scripts/bootstrap.sh --bench" >&2; exit 2; }
nginx_work=$(mktemp -d)
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$nginx_work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $nginx_work/nginx.pid;
error_log $nginx_work/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $nginx_work/body;
    server {
        listen 127.0.0.1:$nginx_port backlog=4096;
        location / {
            if (\$http_authorization = "") { return 401; }
            return 200 "ok\n";
        }
    }
}
NGINX
nginx -c "$nginx_work/nginx.conf" -p "$nginx_work" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null; wait $nginx_pid 2>/dev/null; rm -rf "$nginx_work"' EXIT
for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && break
    sleep 0.1
done
url="http://127.0.0.1:$nginx_port/"

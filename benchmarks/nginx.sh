# Sourced by the benchmark scripts: starts nginx-light on a free loopback port (1 worker, access
# log off), answering 200 "ok" when an Authorization header is present and 401 otherwise; sets
# $url and stops nginx (and removes its files) when the script exits.
#
# With nginx_tls=1 set before sourcing, it also serves the same over https on a second loopback
# port, with a self-signed certificate made here with openssl (subjectAltName IP:127.0.0.1, so a
# client that trusts the certificate verifies the name too), and sets $tls_url and $tls_cert (the
# certificate, PEM, to pass as the CA file). With nginx_h2=1 too, that port speaks HTTP/2 to
# clients that offer h2 by ALPN (HTTP/1.1 to the others).
command -v nginx >/dev/null || { echo "run scripts/bootstrap.sh --bench" >&2; exit 2; }
nginx_work=$(mktemp -d)
read -r nginx_port nginx_tls_port < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
nginx_tls_server=
if [ "${nginx_tls:-0}" = 1 ]; then
    command -v openssl >/dev/null || { echo "apt-get install openssl" >&2; exit 2; }
    tls_cert=$nginx_work/cert.pem
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$nginx_work/key.pem" -out "$tls_cert" 2>/dev/null
    nginx_h2_flag=
    [ "${nginx_h2:-0}" = 1 ] && nginx_h2_flag=" http2"
    nginx_tls_server="
    server {
        listen 127.0.0.1:$nginx_tls_port ssl$nginx_h2_flag backlog=4096;
        ssl_certificate $tls_cert;
        ssl_certificate_key $nginx_work/key.pem;
        location / {
            if (\$http_authorization = \"\") { return 401; }
            return 200 \"ok\\n\";
        }
    }"
fi
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
    }$nginx_tls_server
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
if [ -n "$nginx_tls_server" ]; then
    tls_url="https://127.0.0.1:$nginx_tls_port/"
    for _ in $(seq 50); do
        curl -s -o /dev/null --cacert "$tls_cert" "$tls_url" && break
        sleep 0.1
    done
fi

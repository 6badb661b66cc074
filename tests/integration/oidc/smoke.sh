#!/usr/bin/env bash
# Smoke test for the local oidc-provider test server: starts server.mjs on an
# ephemeral loopback port, exercises it with curl, stops it.
# Exit 0 only if every check passes. Needs node, npm (first run) and curl.
set -u

cd "$(dirname "$0")"

TOKEN_TTL=2
READY_TIMEOUT=30

if [ ! -d node_modules ]; then
  echo "installing dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2 || { echo "FAIL - npm ci"; exit 1; }
fi

tmp=$(mktemp -d)
server_pid=

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=0 TOKEN_TTL=$TOKEN_TTL node server.mjs >"$tmp/stdout" 2>"$tmp/stderr" &
server_pid=$!

base=
start_ms=$(($(date +%s%N) / 1000000))
for _ in $(seq $((READY_TIMEOUT * 10))); do
  if read -r word url <"$tmp/stdout" 2>/dev/null && [ "$word" = READY ]; then
    base=$url
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$base" ]; then
  echo "FAIL - server did not print READY within ${READY_TIMEOUT}s"
  sed 's/^/server stderr: /' "$tmp/stderr"
  exit 1
fi
case "$base" in
  http://127.0.0.1:*) ;;
  *) echo "FAIL - unexpected READY url: $base"; exit 1 ;;
esac
echo "server ready at $base after $(($(date +%s%N) / 1000000 - start_ms)) ms"

passed=0
failed=0
check() { # check NAME BODY PATTERN...: every grep -E pattern must match BODY
  local name=$1 body=$2 pattern
  shift 2
  for pattern in "$@"; do
    if ! printf '%s' "$body" | grep -Eq -- "$pattern"; then
      echo "FAIL - $name: expected /$pattern/ in: $body"
      failed=$((failed + 1))
      return
    fi
  done
  echo "ok - $name"
  passed=$((passed + 1))
}

# POST to the server; prints "HTTP <status>" then the body on one line.
post() {
  local path=$1
  shift
  curl -sS --max-time 10 -w '\nHTTP %{http_code}' "$@" "$base$path" | tr '\n' ' '
}

access_token() {
  printf '%s' "$1" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

discovery=$(curl -sS --max-time 10 "$base/.well-known/openid-configuration")
check "discovery lists token and introspection endpoints" "$discovery" \
  "\"token_endpoint\":\"$base/token\"" \
  "\"introspection_endpoint\":\"$base/token/introspection\""

r=$(post /token -u tf-basic:tf-basic-secret -d grant_type=client_credentials -d scope=read)
check "tf-basic client_secret_basic, scope=read -> token" "$r" \
  'HTTP 200' '"access_token":"[^"]+"' '"token_type":"Bearer"' \
  "\"expires_in\":$TOKEN_TTL[,}]" '"scope":"read"'
basic_token=$(access_token "$r")

r=$(post /token -d grant_type=client_credentials -d 'scope=read write' \
  -d client_id=tf-post -d client_secret=tf-post-secret)
check "tf-post client_secret_post, scope='read write' -> token" "$r" \
  'HTTP 200' '"access_token":"[^"]+"' "\"expires_in\":$TOKEN_TTL[,}]" '"scope":"read write"'

r=$(post /token -u tf-basic:wrong-secret -d grant_type=client_credentials -d scope=read)
check "wrong secret -> invalid_client" "$r" \
  'HTTP 401' '"error":"invalid_client"' '"error_description":"[^"]+"'

r=$(post /token -u tf-post:tf-post-secret -d grant_type=client_credentials -d scope=read)
check "tf-post via Basic (not its registered method) -> invalid_client" "$r" \
  'HTTP 401' '"error":"invalid_client"'

r=$(post /token -u tf-basic:tf-basic-secret -d grant_type=client_credentials -d scope=admin)
check "scope=admin -> invalid_scope" "$r" 'HTTP 400' '"error":"invalid_scope"'

r=$(post /token/introspection -u tf-introspect:tf-introspect-secret -d "token=$basic_token")
check "introspect fresh token -> active" "$r" \
  'HTTP 200' '"active":true' '"client_id":"tf-basic"' '"scope":"read"'

r=$(post /token/introspection -u tf-basic:tf-basic-secret -d token=not-a-real-token)
check "introspect garbage -> inactive" "$r" 'HTTP 200' '^\{"active":false\}'

# Short sleeps so an INT/TERM to this script is handled promptly.
for _ in $(seq $(((TOKEN_TTL + 1) * 5))); do sleep 0.2; done
r=$(post /token/introspection -u tf-introspect:tf-introspect-secret -d "token=$basic_token")
check "introspect after TOKEN_TTL+1 s -> inactive" "$r" 'HTTP 200' '^\{"active":false\}'

if ! grep -qv '^READY ' "$tmp/stdout"; then
  echo "ok - stdout holds only the READY line"
  passed=$((passed + 1))
else
  echo "FAIL - extra stdout output:"; cat "$tmp/stdout"
  failed=$((failed + 1))
fi

# Clean shutdown on SIGTERM.
kill -TERM "$server_pid"
rc=
for _ in $(seq 50); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    wait "$server_pid"; rc=$?
    break
  fi
  sleep 0.1
done
if [ "$rc" = 0 ]; then
  echo "ok - server exits 0 on SIGTERM"
  passed=$((passed + 1))
else
  echo "FAIL - server did not exit cleanly on SIGTERM (rc=${rc:-still running})"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Runs a command against a freshly started oidc-provider (server.mjs), then stops the server.
#   run-with-server.sh COMMAND [ARGS...]
# The command sees TOKENFLIGHT_OIDC_ISSUER=http://127.0.0.1:<port>, TOKENFLIGHT_OIDC_TTL and
# TOKENFLIGHT_OIDC_KEYS, a directory with the private keys of the server's private_key_jwt
# clients (rsa.pem, ec.pem), made for this run and removed after it. When
# TOKENFLIGHT_OIDC_CERTS_TOOL names tokenflight_oidc_certs, the certificates of mutual TLS (ca,
# server, client, self: .pem and .key) are made into that directory too, and the server also
# listens over HTTPS for mTLS clients (see server.mjs, MTLS_DIR).
# Installs the npm dependencies on first use, into TOKENFLIGHT_OIDC_WORK_DIR when that is set (the
# build directory: ctest sets it, so a read-only checkout works), else next to this script.
# Fails with a clear message when node or npm is missing or the server does not come up within 30 s.
set -euo pipefail
src="$(cd "$(dirname "$0")" && pwd)"
here=${TOKENFLIGHT_OIDC_WORK_DIR:-$src}
ttl=${TOKENFLIGHT_OIDC_TTL:-2}

# shellcheck source=../../npm-work-dir.sh
. "$src/../../npm-work-dir.sh"
npm_work_dir "oidc tests" "$src" "$here" oidc-provider package.json package-lock.json server.mjs

out=$(mktemp)
keys=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$out" "$out.err" "$keys"
}
trap cleanup EXIT
mtls=
if [ -n "${TOKENFLIGHT_OIDC_CERTS_TOOL:-}" ]; then
    "$TOKENFLIGHT_OIDC_CERTS_TOOL" "$keys" || { echo "oidc tests: $TOKENFLIGHT_OIDC_CERTS_TOOL failed" >&2; exit 1; }
    mtls=$keys
fi
PORT=0 TOKEN_TTL=$ttl CLIENT_KEYS_DIR=$keys MTLS_DIR=$mtls node "$here/server.mjs" >"$out" 2>"$out.err" &
server=$!

issuer=
for _ in $(seq 300); do
    issuer=$(sed -n 's/^READY //p' "$out")
    [ -n "$issuer" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
        echo "oidc tests: the oidc-provider server exited before it was ready:" >&2
        cat "$out.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$issuer" ]; then
    echo "oidc tests: the oidc-provider server was not ready within 30 s:" >&2
    cat "$out.err" >&2
    exit 1
fi
TOKENFLIGHT_OIDC_ISSUER="$issuer" TOKENFLIGHT_OIDC_TTL="$ttl" TOKENFLIGHT_OIDC_KEYS="$keys" "$@"

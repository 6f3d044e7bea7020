#!/usr/bin/env bash
# Starts trialsd on a fresh database and a free loopback port, creates an
# admin, and runs compat.test.mjs with the published Edge Impulse client
# against it. Needs Go, Node.js with npm, and the Postgres on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."

npm ci --prefix compat --no-audit --no-fund --silent
make build >/dev/null

db="trialsd_compat_$$"
port=$(( 20000 + RANDOM % 20000 ))
log=$(mktemp)
export TRIALSD_DATABASE_URL="postgres://postgres@127.0.0.1:5432/${db}?sslmode=disable"
export TRIALSD_HTTP_ADDR="127.0.0.1:${port}"
export TRIALSD_AUTH_JWT_SECRET="compat-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TRIALSD_BILLING_CALLBACK_SECRET="compat-billing"
export TRIALSD_TURNSTILE_ENABLED=false
export TRIALSD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true # webhooks.test.mjs receives on loopback
export TRIALSD_LOG_FORMAT=text
export TRIALSD_LOG_LEVEL=debug # the log sender writes e-mail bodies (codes) at debug
export TRIALSD_CONFIG=config.yaml

bin/trialsd serve --migrate >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${port}/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "trialsd exited:"; cat "$log"; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:${port}/readyz" >/dev/null || { echo "trialsd never became ready:"; cat "$log"; exit 1; }

admin_key=$(bin/trialsd users create-admin --username compat-admin --email admin@compat.example | tail -n 1)

status=0
TRIALSD_URL="http://127.0.0.1:${port}" TRIALSD_ADMIN_KEY="$admin_key" TRIALSD_LOG_FILE="$log" \
  node --test compat/ || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- trialsd log ---"
  tail -n 60 "$log"
fi
exit "$status"

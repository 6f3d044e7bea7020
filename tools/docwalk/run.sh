#!/usr/bin/env bash
# The documentation's walk-throughs, run as written: a newcomer's first
# hour, from a fresh clone, in the order the pages are read.
#
# It creates a fresh database, starts the daemon with `make run` (the same
# build, config files and throw-away secrets a reader gets), and then runs
# the shell blocks of each page below, in order, each page in a shell of its
# own started at the clone's root (as a reader opening a new terminal for a
# page), sharing the daemon and its database. It stops at the first command
# that fails, naming the page and line.
#
# Which blocks run (the convention the pages follow):
#   - a block fenced ```sh in a page below is pasted into a shell: it runs;
#   - a ```sh block whose previous non-blank line is <!-- docwalk: skip -->
#     is for the reader only (starting the daemon, Docker): it does not;
#   - blocks in any other language (```text, ```yaml, ```go, ```js, or none)
#     never run. ```bash, ```shell and ```console are refused in these
#     pages, so that no shell block is left out by accident.
#
# A page's commands run exactly as written, but for one substitution: the
# daemon listens on 4800 as the pages say when that port is free, and on a
# free port otherwise, which then replaces ":4800" in the commands. Needs
# Go, Node.js with npm, curl, jq and the Postgres on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

pages=(README.md docs/test-clocks.md docs/webhooks.md docs/operations.md)

# extract PAGE prints PAGE with every line outside its runnable ```sh blocks
# blanked, so a failing command's line number is its line in the page.
extract() {
  awk -v page="$1" '
    function fail(msg) { printf "docwalk: %s:%d: %s\n", page, NR, msg > "/dev/stderr"; bad = 1; exit 1 }
    !inblock && /^[ \t]*```/ {
      lang = $0; sub(/^[ \t]*```/, "", lang); sub(/[ \t]+$/, "", lang)
      if (lang ~ /^(bash|shell|console|zsh)$/) fail("a ```" lang " block: fence it ```sh to run it, or ```text")
      if (lang == "sh" && $0 !~ /^```/) fail("an indented ```sh block: the walk runs only unindented ones")
      inblock = 1; run = (lang == "sh" && prev !~ /^<!-- docwalk: skip -->$/); print ""; next
    }
    inblock && /^[ \t]*```[ \t]*$/ { inblock = 0; run = 0; prev = "```"; print ""; next }
    { print (inblock && run) ? $0 : "" }
    !inblock && NF { prev = $0 }
    END { if (!bad && inblock) { printf "docwalk: %s: a block is never closed\n", page > "/dev/stderr"; exit 1 } }
  ' "$1"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=4800
until port_free "$port"; do port=$(( 20000 + RANDOM % 20000 )); done

db="trialsd_docwalk_$$"
work=$(mktemp -d)
log="$work/daemon.log"
export TRIALSD_DATABASE_URL="postgres://postgres@127.0.0.1:5432/${db}?sslmode=disable"
export TRIALSD_HTTP_ADDR="127.0.0.1:${port}"

# Every page is checked before anything starts.
for page in "${pages[@]}"; do
  script="$work/$(echo "$page" | tr / _).sh"
  extract "$page" >"$script"
  if [ "$port" != 4800 ]; then sed -i "s/:4800\b/:${port}/g" "$script"; fi
done

# make run, in a session of its own so that it stops with its daemon.
setsid make run >"$log" 2>&1 &
pid=$!
cleanup() {
  kill -TERM -- "-$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:${port}/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "docwalk: make run exited:"; cat "$log"; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:${port}/readyz" >/dev/null || { echo "docwalk: the daemon never became ready:"; cat "$log"; exit 1; }
echo "== docwalk: make run serves on 127.0.0.1:${port}, database ${db}"

for page in "${pages[@]}"; do
  script="$work/$(echo "$page" | tr / _).sh"
  echo "== docwalk: $page"
  start=$SECONDS
  # shellcheck disable=SC2016 # expanded by the page's shell
  if ! (cd "$root" && PAGE="$page" timeout 300 bash -euo pipefail -c '
        PS4="+ ${PAGE}:\${LINENO}: "
        trap '\''echo "docwalk: ${PAGE}:${LINENO}: this command failed (exit $?)" >&2'\'' ERR
        set -x
        . "$1"' docwalk "$script"); then
    echo "docwalk: $page failed; the daemon's last lines:"
    tail -n 40 "$log"
    exit 1
  fi
  echo "== docwalk: $page passed in $(( SECONDS - start )) s"
done
echo "== docwalk: every page ran as written"

#!/usr/bin/env bash
# Install the independent reference implementations the fidelity tests compare against
# (twitter-text, @atproto/api, snudown-js; pinned in tests/reference/package.json) into
# ${ONEYEARAGO_REFERENCE_DIR:-<repo>/.cache/reference}. Pure JavaScript: nothing is compiled.
#
# Idempotent: a stamp (sha256 of package.json + node version) records a finished install; when it
# matches, the script only checks that every package still loads and exits.
#
# Usage: scripts/install-reference.sh [--force]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC_PKG=$REPO/tests/reference/package.json
DIR=${ONEYEARAGO_REFERENCE_DIR:-$REPO/.cache/reference}
STAMP=$DIR/.install-stamp
FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

log() { echo "[install-reference $(date +%T)] $*"; }
die() { echo "[install-reference] error: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Node.js 18+ is needed; 20 is tested)"
command -v npm >/dev/null || die "npm is not installed"
[ -f "$SRC_PKG" ] || die "missing $SRC_PKG"

NODE_VERSION=$(node -v)
PKG_HASH=$(sha256sum "$SRC_PKG" | cut -d' ' -f1)
WANT_STAMP="$PKG_HASH node $NODE_VERSION"
MODULES=(twitter-text @atproto/api snudown-js)

check_load() {
  local m
  for m in "${MODULES[@]}"; do
    (cd "$DIR" && node -e "require('$m')") || return 1
  done
}

mkdir -p "$DIR"
# Serialize concurrent installs (parallel test runs) on the same directory.
exec 9>"$DIR/.install.lock"
if command -v flock >/dev/null; then flock 9; fi

if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] && [ -d "$DIR/node_modules" ]; then
  if check_load 2>/dev/null; then
    log "already installed in $DIR ($WANT_STAMP), nothing to do"
    exit 0
  fi
  log "stamp matches but a package does not load: reinstalling"
fi

t0=$SECONDS
rm -f "$STAMP"
log "installing into $DIR with node $NODE_VERSION, npm $(npm -v)"
cp "$SRC_PKG" "$DIR/package.json"

log "npm install --no-audit --no-fund (log: $DIR/npm-install.log)"
if ! (cd "$DIR" && npm install --no-audit --no-fund >npm-install.log 2>&1); then
  tail -40 "$DIR/npm-install.log" >&2
  die "npm install failed (full log: $DIR/npm-install.log)"
fi

check_load || die "a reference package does not load (see $DIR/npm-install.log)"
for m in "${MODULES[@]}"; do
  v=$(node -p "require('$DIR/node_modules/$m/package.json').version") || die "$m is not installed"
  log "$m $v"
done

echo "$WANT_STAMP" > "$STAMP"
log "done in $((SECONDS - t0))s; node_modules $(du -sh "$DIR/node_modules" | cut -f1)"

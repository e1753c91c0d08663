#!/usr/bin/env bash
# Install the local Bluesky reference server (@atproto/pds + @did-plc/server, pinned in
# tests/pds/package.json) for the integration tests, into ${ONEYEARAGO_PDS_DIR:-<repo>/.cache/pds}.
#
# Idempotent: a stamp (sha256 of package.json + node version) records a finished install; when it
# matches, the script only checks that better-sqlite3 still loads and exits. The first run takes a
# few minutes: better-sqlite3 is compiled with node-gyp against the local Node headers (its prebuilt
# binary download is usually unreachable here), so npm must not try to download headers either.
#
# Usage: scripts/install-pds.sh [--force]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC_PKG=$REPO/tests/pds/package.json
DIR=${ONEYEARAGO_PDS_DIR:-$REPO/.cache/pds}
STAMP=$DIR/.install-stamp
FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

log() { echo "[install-pds $(date +%T)] $*"; }
die() { echo "[install-pds] error: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Node.js 18.7+ is needed; 20 is tested)"
command -v npm >/dev/null || die "npm is not installed"
[ -f "$SRC_PKG" ] || die "missing $SRC_PKG"

NODE_VERSION=$(node -v)
PKG_HASH=$(sha256sum "$SRC_PKG" | cut -d' ' -f1)
WANT_STAMP="$PKG_HASH node $NODE_VERSION"

check_sqlite() {
  (cd "$DIR" && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()")
}

mkdir -p "$DIR"
# Serialize concurrent installs (parallel test runs) on the same directory.
exec 9>"$DIR/.install.lock"
if command -v flock >/dev/null; then flock 9; fi

if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] && [ -d "$DIR/node_modules" ]; then
  if check_sqlite 2>/dev/null; then
    log "already installed in $DIR ($WANT_STAMP), nothing to do"
    exit 0
  fi
  log "stamp matches but better-sqlite3 does not load: reinstalling"
fi

t0=$SECONDS
rm -f "$STAMP"
log "installing into $DIR with node $NODE_VERSION, npm $(npm -v)"
cp "$SRC_PKG" "$DIR/package.json"

# Compile better-sqlite3 against the headers of the running node, never download them.
NODEDIR=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [ -f "$NODEDIR/include/node/node_version.h" ]; then
  export npm_config_nodedir=$NODEDIR
  log "node headers: $NODEDIR/include/node (npm_config_nodedir)"
else
  log "warning: no node headers under $NODEDIR/include/node; node-gyp may try to download them"
fi

log "npm install --no-audit --no-fund (log: $DIR/npm-install.log)"
if ! (cd "$DIR" && npm install --no-audit --no-fund >npm-install.log 2>&1); then
  tail -40 "$DIR/npm-install.log" >&2
  die "npm install failed (full log: $DIR/npm-install.log)"
fi

log "checking that better-sqlite3 loads"
check_sqlite || die "better-sqlite3 native module does not load (see $DIR/npm-install.log)"
for m in @atproto/pds @did-plc/server; do
  v=$(cd "$DIR" && node -p "require('$m/package.json').version") || die "$m is not installed"
  log "$m $v"
done

echo "$WANT_STAMP" > "$STAMP"
log "done in $((SECONDS - t0))s; node_modules $(du -sh "$DIR/node_modules" | cut -f1)"

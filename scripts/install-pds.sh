#!/usr/bin/env bash
# Install the local Bluesky reference server (@atproto/pds + @did-plc/server, pinned in
# tests/pds/package.json) for the integration tests, into ${ONEYEARAGO_PDS_DIR:-<repo>/.cache/pds}.
#
# Idempotent (scripts/npm-install.sh): when the stamp matches, the script only checks that
# better-sqlite3 still loads and exits. The first run takes a few minutes: better-sqlite3 is compiled
# with node-gyp against the local Node headers (its prebuilt binary download is usually unreachable
# here), so npm must not try to download headers either.
#
# Usage: scripts/install-pds.sh [--force]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=install-pds
SRC_PKG=$REPO/tests/pds/package.json
DIR=${ONEYEARAGO_PDS_DIR:-$REPO/.cache/pds}
MODULES=(@atproto/pds @did-plc/server)

check_install() {
  (cd "$DIR" && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()")
}

before_install() {
  # Compile better-sqlite3 against the headers of the running node, never download them.
  local nodedir
  nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  if [ -f "$nodedir/include/node/node_version.h" ]; then
    export npm_config_nodedir=$nodedir
    log "node headers: $nodedir/include/node (npm_config_nodedir)"
  else
    log "warning: no node headers under $nodedir/include/node; node-gyp may try to download them"
  fi
}

# shellcheck source=scripts/npm-install.sh
source "$REPO/scripts/npm-install.sh"
npm_install_pinned "$@"

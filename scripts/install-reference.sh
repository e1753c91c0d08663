#!/usr/bin/env bash
# Install the independent reference implementations the fidelity tests compare against
# (twitter-text, @atproto/api, snudown-js; pinned in tests/reference/package.json) into
# ${ONEYEARAGO_REFERENCE_DIR:-<repo>/.cache/reference}. Pure JavaScript: nothing is compiled.
#
# Idempotent (scripts/npm-install.sh): when the stamp matches, the script only checks that every
# package still loads and exits.
#
# Usage: scripts/install-reference.sh [--force]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=install-reference
SRC_PKG=$REPO/tests/reference/package.json
DIR=${ONEYEARAGO_REFERENCE_DIR:-$REPO/.cache/reference}
MODULES=(twitter-text @atproto/api snudown-js)

check_install() {
  local m
  for m in "${MODULES[@]}"; do
    (cd "$DIR" && node -e "require('$m')") || return 1
  done
}

# shellcheck source=scripts/npm-install.sh
source "$REPO/scripts/npm-install.sh"
npm_install_pinned "$@"

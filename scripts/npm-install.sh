#!/usr/bin/env bash
# Shared by install-pds.sh and install-reference.sh (source it, then call npm_install_pinned): install
# the npm packages pinned in a package.json into a directory, once.
#
# Idempotent: a stamp (sha256 of package.json + node version) records a finished install; when it
# matches and the caller's check still passes, nothing is done. Concurrent installs into the same
# directory (parallel test runs) are serialised with flock.
#
# The caller sets:
#   NAME     - the name shown in the log lines, e.g. install-pds
#   SRC_PKG  - the pinned package.json
#   DIR      - the install directory
#   MODULES  - array of the packages whose versions are logged
# and defines check_install (succeeds when the installed packages load); before_install, when
# defined, runs just before npm install (e.g. to point node-gyp at local headers).
#
# Usage (from a script): source scripts/npm-install.sh; npm_install_pinned "$@"   # [--force]

log() { echo "[$NAME $(date +%T)] $*"; }
die() { echo "[$NAME] error: $*" >&2; exit 1; }

npm_install_pinned() {
  local force=0
  case "${1:-}" in
    --force) force=1 ;;
    "") ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
  esac

  command -v node >/dev/null || die "node is not installed (Node.js 18.7+ is needed; 20 is tested)"
  command -v npm >/dev/null || die "npm is not installed"
  [ -f "$SRC_PKG" ] || die "missing $SRC_PKG"

  local node_version pkg_hash want_stamp stamp=$DIR/.install-stamp
  node_version=$(node -v)
  pkg_hash=$(sha256sum "$SRC_PKG" | cut -d' ' -f1)
  want_stamp="$pkg_hash node $node_version"

  mkdir -p "$DIR"
  exec 9>"$DIR/.install.lock"
  if command -v flock >/dev/null; then flock 9; fi

  if [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] && [ -d "$DIR/node_modules" ]; then
    if check_install 2>/dev/null; then
      log "already installed in $DIR ($want_stamp), nothing to do"
      exit 0
    fi
    log "stamp matches but the install does not load: reinstalling"
  fi

  local t0=$SECONDS
  rm -f "$stamp"
  log "installing into $DIR with node $node_version, npm $(npm -v)"
  cp "$SRC_PKG" "$DIR/package.json"
  if declare -F before_install >/dev/null; then before_install; fi

  log "npm install --no-audit --no-fund (log: $DIR/npm-install.log)"
  if ! (cd "$DIR" && npm install --no-audit --no-fund >npm-install.log 2>&1); then
    tail -40 "$DIR/npm-install.log" >&2
    die "npm install failed (full log: $DIR/npm-install.log)"
  fi

  log "checking that the packages load"
  check_install || die "the installed packages do not load (see $DIR/npm-install.log)"
  local m v
  for m in "${MODULES[@]}"; do
    v=$(node -p "require('$DIR/node_modules/$m/package.json').version") || die "$m is not installed"
    log "$m $v"
  done

  echo "$want_stamp" > "$stamp"
  log "done in $((SECONDS - t0))s; node_modules $(du -sh "$DIR/node_modules" | cut -f1)"
}

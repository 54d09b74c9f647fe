#!/usr/bin/env bash
# Installs the built daemon (make install) or removes it (make uninstall).
#
#   scripts/install.sh                 the daemon, the `driveshaft` command, the man page, example configs
#   scripts/install.sh --systemd       also the systemd unit (and the driveshaft system user)
#   scripts/install.sh --sysv          also the LSB init script (/etc/init.d/driveshaft)
#   scripts/install.sh --uninstall     remove what the above installed; configs in /etc are kept
#
# Environment: PREFIX (default /usr/local), SYSCONFDIR (default /etc), DESTDIR (staging root for
# packagers, default empty), NODE (the node binary the command runs, Node.js >= 24; default: `command
# -v node`, which under make is the checkout's .node/current/bin/node when scripts/install-deps.sh put
# one there). dist/ must be built first (`make install` builds it).
#
# Layout:
#   $PREFIX/lib/driveshaft/         dist/src, bin/driveshaft.js, package.json, production node_modules
#   $PREFIX/lib/driveshaft/node/    bin/node and its LICENSE, when NODE is the checkout's .node/ one
#   $PREFIX/bin/driveshaft          wrapper: exec <NODE> $PREFIX/lib/driveshaft/bin/driveshaft.js "$@"
#   $PREFIX/share/man/man1/driveshaft.1
#   $SYSCONFDIR/driveshaft/{jobs,log}.json, $SYSCONFDIR/default/driveshaft, $SYSCONFDIR/logrotate.d/driveshaft
#                                   (never overwritten: they are the operator's once installed)
set -euo pipefail

cd "$(dirname "$0")/.."

PREFIX="${PREFIX:-/usr/local}"
SYSCONFDIR="${SYSCONFDIR:-/etc}"
DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX%/}"
SYSCONFDIR="${SYSCONFDIR%/}"

action=install
systemd=''
sysv=''
for arg in "$@"; do
  case "$arg" in
    --uninstall) action=uninstall ;;
    --systemd) systemd=1 ;;
    --sysv) sysv=1 ;;
    -h | --help)
      sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install: unknown argument $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

# Paths as the running system sees them, and where this run writes them (under DESTDIR).
libdir="$PREFIX/lib/driveshaft"
bindir="$PREFIX/bin"
mandir="$PREFIX/share/man/man1"
unitdir="$PREFIX/lib/systemd/system"
confdir="$SYSCONFDIR/driveshaft"
initdir="$SYSCONFDIR/init.d"
# The oldest Node.js major driveshaft runs on (package.json "engines").
readonly NODE_MIN_MAJOR=24
say() { printf '  %s\n' "$*"; }
fail() {
  printf 'install: %s\n' "$@" >&2
  exit 1
}

# Copies $1 to $2 with @PREFIX@ and @NODE@ replaced, and the default /usr/local/ and /etc/ paths of the
# service files (usable as they are with the default PREFIX and SYSCONFDIR) changed to this install's.
install_template() {
  local source="$1" target="$DESTDIR$2" mode="$3"
  mkdir -p "$(dirname "$target")"
  sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@NODE@|${node_bin:-}|g" \
    -e "s|/usr/local/|$PREFIX/|g" -e "s|/etc/|$SYSCONFDIR/|g" "$source" >"$target.tmp"
  chmod "$mode" "$target.tmp"
  mv -f "$target.tmp" "$target"
  say "file     $2"
}

# As install_template, unless $2 exists: configs belong to the operator once installed.
install_config() {
  if [[ -e "$DESTDIR$2" ]]; then
    say "kept     $2 (exists)"
  else
    install_template "$1" "$2" 0644
  fi
}

if [[ "$action" == uninstall ]]; then
  echo "==> removing driveshaft from ${DESTDIR}${PREFIX}"
  for path in "$libdir" "$bindir/driveshaft" "$mandir/driveshaft.1" "$unitdir/driveshaft.service"; do
    if [[ -e "$DESTDIR$path" ]]; then
      rm -rf -- "$DESTDIR$path"
      say "removed  $path"
    fi
  done
  # The init script is removed only if it is ours (it could be a distribution's of the same name).
  if [[ -f "$DESTDIR$initdir/driveshaft" ]] && grep -q 'Provides: *driveshaft' "$DESTDIR$initdir/driveshaft"; then
    rm -f "$DESTDIR$initdir/driveshaft"
    say "removed  $initdir/driveshaft"
  fi
  say "kept     $confdir, $SYSCONFDIR/default/driveshaft and $SYSCONFDIR/logrotate.d/driveshaft (your configs)"
  exit 0
fi

[[ -f dist/src/main.js ]] || fail "dist/src/main.js is missing: run 'make build' first"
[[ -d node_modules ]] || fail "node_modules is missing: run 'npm ci' first"
node_bin="${NODE:-$(command -v node || true)}"
[[ -n "$node_bin" ]] || fail "node is not on PATH; set NODE=/path/to/node (Node.js >= $NODE_MIN_MAJOR)"
[[ "$node_bin" == /* ]] || node_bin="$(command -v "$node_bin" || true)"
[[ "$node_bin" == /* && -x "$node_bin" ]] || fail "NODE=${NODE:-} is not an executable file; set NODE=/path/to/node (Node.js >= $NODE_MIN_MAJOR)"
node_version="$("$node_bin" --version 2>/dev/null || true)"
node_major="${node_version#v}"
node_major="${node_major%%.*}"
[[ "$node_major" =~ ^[0-9]+$ ]] && ((node_major >= NODE_MIN_MAJOR)) ||
  fail "$node_bin is Node.js ${node_version:-of unknown version}; driveshaft needs >= $NODE_MIN_MAJOR." \
    "scripts/install-deps.sh installs one into .node/ (make install then uses it), or set NODE=/path/to/node."
# A node inside this checkout (.node/, from scripts/install-deps.sh) is copied next to the daemon: the
# installed service must not depend on a source tree that may move or go away, and systemd's
# ProtectHome= would hide a checkout under /home from the service anyway.
node_copy=''
if [[ "$(realpath "$node_bin")" == "$(realpath .)"/* ]]; then
  node_copy="$(realpath "$node_bin")"
  node_bin="$libdir/node/bin/node"
fi

echo "==> installing driveshaft into ${DESTDIR}${PREFIX} (configs in ${DESTDIR}${SYSCONFDIR})"

# A fresh copy each time: files a newer version no longer has must not linger.
stage="$DESTDIR$libdir.new"
rm -rf "$stage"
mkdir -p "$stage/dist" "$stage/bin"
cp -R dist/src "$stage/dist/src"
cp bin/driveshaft.js "$stage/bin/driveshaft.js"
cp package.json package-lock.json "$stage/"
cp -R node_modules "$stage/node_modules"
# Only the runtime dependencies: prune works from the lock file, so no network is needed (--offline).
(cd "$stage" && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
# prune leaves the scope folders of removed packages (@types) behind, empty.
find "$stage/node_modules" -mindepth 1 -type d -empty -delete
if [[ -n "$node_copy" ]]; then
  install -D -m 0755 "$node_copy" "$stage/node/bin/node"
  # The Node.js license travels with its binary.
  if [[ -f "$(dirname "$node_copy")/../LICENSE" ]]; then
    install -m 0644 "$(dirname "$node_copy")/../LICENSE" "$stage/node/LICENSE"
  fi
fi
chmod -R u=rwX,go=rX "$stage"
chmod 0755 "$stage/bin/driveshaft.js"
rm -rf "$DESTDIR$libdir"
mv "$stage" "$DESTDIR$libdir"
say "daemon   $libdir"
if [[ -n "$node_copy" ]]; then
  say "node     $node_bin ($node_version, copied from ${node_copy#"$(realpath .)/"})"
else
  say "node     $node_bin ($node_version)"
fi

install_template contrib/bin/driveshaft.in "$bindir/driveshaft" 0755
install -D -m 0644 man/driveshaft.1 "$DESTDIR$mandir/driveshaft.1"
say "man page $mandir/driveshaft.1"

install_config contrib/etc/jobs.json "$confdir/jobs.json"
install_config contrib/etc/log.json "$confdir/log.json"
install_config contrib/default/driveshaft "$SYSCONFDIR/default/driveshaft"
install_config contrib/logrotate.d/driveshaft "$SYSCONFDIR/logrotate.d/driveshaft"

if [[ -n "$sysv" ]]; then
  install_template contrib/init.d/driveshaft "$initdir/driveshaft" 0755
fi

if [[ -n "$systemd" ]]; then
  case "$node_bin" in
    /home/* | /root/* | /run/user/*)
      printf 'install: warning: the unit runs %s, which ProtectHome=yes hides from the service; set NODE to a\n' "$node_bin" >&2
      printf '  node outside /home, /root and /run/user, or use the one scripts/install-deps.sh puts into .node/\n' >&2
      ;;
  esac
  install_template contrib/systemd/driveshaft.service "$unitdir/driveshaft.service" 0644
  # The unit runs as User=driveshaft. Created here only on the real system, not into a staging DESTDIR.
  if [[ -z "$DESTDIR" ]] && ! id driveshaft >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --comment "driveshaft Gearman worker manager" driveshaft
    say "user     driveshaft (system user)"
  fi
  if [[ -z "$DESTDIR" ]] && command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
  fi
fi

echo
echo "Installed. Check the config, then start it:"
echo "  $bindir/driveshaft --check --jobsconfig $confdir/jobs.json --logconfig $confdir/log.json"
if [[ -n "$systemd" ]]; then
  echo "  systemctl enable --now driveshaft"
elif [[ -n "$sysv" ]]; then
  echo "  $initdir/driveshaft start      (update-rc.d driveshaft defaults: start at boot)"
else
  echo "  (service files: make install-systemd, or make install-sysv; see README.md 'Install')"
fi

#!/usr/bin/env bash
# Installs what building, testing and the demo need and are missing: Node.js >= 20.18 is checked (not
# installed), gearmand + the gearman CLI (+ make) and PHP with php-gearman (the tests' PHP client) come
# from apt-get, the npm dependencies from `npm ci`.
# Shared by `make test`, `make demo` and .ci/run so the three can never disagree on what is needed.
#
#   scripts/install-deps.sh            install what is missing
#   scripts/install-deps.sh --npm-ci   also run `npm ci` when node_modules looks current (CI: clean tree)
#   scripts/install-deps.sh --no-npm   system packages only
#   scripts/install-deps.sh --browser  also Debian's chromium, for the status-page browser test (CI);
#                                      without it that one test is reported as skipped
#
# Exit status: 0 ready; 2 something is missing that this script may not install (not root, no
# password-less sudo and no terminal to ask on, or no apt-get): the exact command to run is printed.
set -euo pipefail

cd "$(dirname "$0")/.."

npm_mode=auto
browser=no
for arg in "$@"; do
  case "$arg" in
    --npm-ci) npm_mode=always ;;
    --no-npm) npm_mode=never ;;
    --browser) browser=yes ;;
    -h | --help)
      sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install-deps: unknown argument $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

say() { printf '==> %s\n' "$*" >&2; }
fail() {
  printf 'install-deps: %s\n' "$@" >&2
  exit 2
}

# Debian installs gearmand in /usr/sbin, which is not on an ordinary user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"

# --- Node.js: checked only; distributions ship very different versions and it is the user's choice.
readonly NODE_MIN=20.18.1
if ! command -v node >/dev/null 2>&1; then
  fail "Node.js >= $NODE_MIN is required and 'node' is not on PATH." \
    "Install Node.js 20 LTS or newer (https://nodejs.org/en/download, or https://github.com/nodesource/distributions)."
fi
if ! node -e '
  const want = process.argv[1].split(".").map(Number);
  const have = process.versions.node.split(".").map(Number);
  for (let i = 0; i < 3; i++) if (have[i] !== want[i]) process.exit(have[i] > want[i] ? 0 : 1);
' "$NODE_MIN"; then
  fail "Node.js >= $NODE_MIN is required; this is $(node --version) ($(command -v node))." \
    "Install Node.js 20 LTS or newer (https://nodejs.org/en/download)."
fi

# --- System packages, Debian/Ubuntu names.
missing=()
command -v gearmand >/dev/null 2>&1 || missing+=(gearman-job-server)
command -v gearman >/dev/null 2>&1 || missing+=(gearman-tools)
command -v make >/dev/null 2>&1 || missing+=(make)
# The protocol tests drive jobs with php-gearman, the client PHP applications use (test/php/client.php).
command -v php >/dev/null 2>&1 || missing+=(php-cli)
if ! command -v php >/dev/null 2>&1 || ! php -r 'exit(extension_loaded("gearman") ? 0 : 1);' >/dev/null 2>&1; then
  missing+=(php-gearman)
fi
if [[ "$browser" == yes ]]; then
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
fi

if ((${#missing[@]} > 0)); then
  if ! command -v apt-get >/dev/null 2>&1; then
    fail "missing: ${missing[*]} (Debian/Ubuntu package names), and there is no apt-get here." \
      "Install gearmand, the gearman command-line client, PHP and its gearman extension with your package manager, then run this again."
  fi
  install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
  as_root=()
  if [[ "$(id -u)" -ne 0 ]]; then
    # sudo may ask for a password only when someone is there to type it; CI and pipes must not hang.
    if command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [[ -t 0 ]]; }; then
      as_root=(sudo)
    else
      fail "missing: ${missing[*]}. Install them as root, then run this again:" \
        "  sudo apt-get update && sudo ${install_cmd[*]}"
    fi
  fi
  say "installing ${missing[*]} (${as_root[*]:+${as_root[*]} }apt-get)"
  # A fresh machine or container may have no package lists yet.
  "${as_root[@]}" apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive "${install_cmd[@]}"
fi

# --- npm dependencies.
# npm writes node_modules/.package-lock.json on every install: older than package-lock.json means the
# lock file changed since (a git pull), so the tree is reinstalled.
npm_needed() {
  [[ ! -f node_modules/.package-lock.json ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]
}
if [[ "$npm_mode" == always ]] || { [[ "$npm_mode" == auto ]] && npm_needed; }; then
  say "npm ci"
  npm ci --no-audit --no-fund
fi

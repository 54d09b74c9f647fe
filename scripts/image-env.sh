# shellcheck shell=bash disable=SC2034  # sourced: the variables are for the scripts that source it
# Sourced, not run: `. scripts/image-env.sh` (bash). What scripts/image-base.sh and scripts/image-test.sh
# share: the names of the local images, and podman set up for this kind of machine.
#
# IMAGE_TEST_NODE_MAJOR (default 24) is the Node.js of the local node base, like node:24-bookworm-slim.
IMAGE_NODE_MAJOR="${IMAGE_TEST_NODE_MAJOR:-24}"
IMAGE_DEBIAN_SUITE=bookworm
# Stand-ins for docker.io/library/debian:bookworm-slim and docker.io/library/node:24-bookworm-slim.
IMAGE_DEBIAN_BASE="localhost/driveshaft-test/debian:$IMAGE_DEBIAN_SUITE"
IMAGE_NODE_BASE="localhost/driveshaft-test/node:$IMAGE_NODE_MAJOR-$IMAGE_DEBIAN_SUITE-slim"

# Writes $1/containers.conf and points every later podman command at it (podman-compose's and the RUN
# steps of podman build included). This kind of machine has cgroups v1 with a unified hierarchy beside
# them, which crun refuses (runc is fine), and root cannot raise its hard limits while podman asks for
# nofile 1048576 by default: the containers get this shell's hard limits, at most 65536 files and 8192
# processes.
image_podman_env() {
  local nofile nproc
  nofile="$(ulimit -Hn)"
  [[ "$nofile" == unlimited || "$nofile" -gt 65536 ]] && nofile=65536
  nproc="$(ulimit -Hu)"
  [[ "$nproc" == unlimited || "$nproc" -gt 8192 ]] && nproc=8192
  cat >"$1/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF="$1/containers.conf"
}

# Installs the Debian packages "$@" that are missing (by package name); exit 2 when it cannot.
image_apt_install() {
  local package missing=()
  for package in "$@"; do
    [[ "$(dpkg-query -W -f '${Status}' "$package" 2>/dev/null)" == 'install ok installed' ]] || missing+=("$package")
  done
  ((${#missing[@]} > 0)) || return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    printf 'image: missing %s (Debian package names) and there is no apt-get here\n' "${missing[*]}" >&2
    exit 2
  fi
  printf '    installing %s (apt-get)\n' "${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

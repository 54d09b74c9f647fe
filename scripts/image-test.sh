#!/usr/bin/env bash
# The container image's check (`make image-test`, `npm run image-test`; docs/container.md "What the
# image test checks"). No container registry is needed: scripts/image-base.sh builds the base image here
# from Debian's mirror and the npm registry's Node.js, and it is passed to contrib/container/Containerfile
# as BASE_IMAGE. The image then runs beside a real gearmand and the example endpoint (host network) and
# must: go healthy, run jobs signed with a secret mounted read-only, write dead letters to a volume,
# reload on `podman kill --signal HUP`, reap what the container hands its PID 1, and finish a running
# job when `podman stop` drains it. Last, the example compose file (contrib/container/compose.yaml) runs
# under podman-compose and a job goes through it.
#
#   scripts/image-test.sh                 everything (as root; installs podman, runc, mmdebstrap,
#                                         podman-compose and CNI's dnsname plugin from apt-get if missing)
#   scripts/image-test.sh --rebuild-base  build the local base images again even if they exist
#   scripts/image-test.sh --no-compose    skip the compose part
#   scripts/image-test.sh --pid1 node     run the checks with Node.js itself as PID 1 instead of tini,
#                                         to compare (docs/container.md "PID 1"); the orphan check fails
#
# The base images stay in podman's storage (localhost/driveshaft-test/…) for the next run; the image
# under test is localhost/driveshaft:test. Exit status 0 passed, 1 a check failed, 2 this machine cannot
# run it (not root, no apt-get). Figures (sizes, time to healthy, drain time) end the output.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

rebuild_base=''
compose=1
pid1=tini
while (($# > 0)); do
  case "$1" in
    --rebuild-base) rebuild_base=1 ;;
    --no-compose) compose='' ;;
    --pid1=*) pid1="${1#--pid1=}" ;;
    --pid1)
      pid1="${2:-}"
      shift
      ;;
    -h | --help)
      sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "image-test: unknown argument $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done
[[ "$pid1" == tini || "$pid1" == node ]] || {
  echo "image-test: --pid1 takes tini (the image's ENTRYPOINT) or node (Node.js as PID 1, to compare)" >&2
  exit 2
}

started=$SECONDS
step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - started))" "$*"; }
pass() { printf '    ok: %s\n' "$*"; }
fail() {
  printf 'image-test: FAILED: %s\n' "$@" >&2
  exit 1
}
cannot() {
  printf 'image-test: %s\n' "$@" >&2
  exit 2
}
# Seconds since the epoch with milliseconds, for the figures.
now() { date +%s.%N | cut -c1-14; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

export PATH="$PATH:/usr/sbin:/sbin"
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh

# shellcheck source=scripts/image-env.sh
. scripts/image-env.sh
readonly IMAGE=localhost/driveshaft:test
readonly GEARMAND_IMAGE=localhost/driveshaft-test/gearmand:latest
readonly CONTAINER=driveshaft-image-test
readonly SECRET=driveshaft-image-test-signing
readonly VOLUME=driveshaft-image-test-state
readonly COMPOSE_PROJECT=driveshaft-image-test
# The image's user (contrib/container/Containerfile): mounted files must be readable by it.
readonly IMAGE_UID=10001

# --- What this machine needs.
[[ "$(id -u)" -eq 0 ]] || cannot "runs as root (rootful podman, mmdebstrap); run it with sudo"
step "packages: podman, runc, mmdebstrap${compose:+, podman-compose}; gearmand, the gearman CLI and Node.js (scripts/install-deps.sh)"
# Without CNI's dnsname plugin, containers on a compose network cannot find each other by name.
image_apt_install podman runc mmdebstrap ${compose:+podman-compose golang-github-containernetworking-plugin-dnsname}
scripts/install-deps.sh --no-npm 2>&1 | sed 's/^/    /'
hash -r

# --- Everything below is removed on exit, whatever happened.
work="$(mktemp -d "${TMPDIR:-/tmp}/driveshaft-image-test.XXXXXX")"
endpoint_pid=''
gearmand_pid=''
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local status=$?
  set +e
  if ((status != 0)) && podman container exists "$CONTAINER" 2>/dev/null; then
    echo "--- podman logs $CONTAINER (last 30 lines):" >&2
    podman logs --tail 30 "$CONTAINER" >&2
  fi
  podman rm -f -t 0 "$CONTAINER" >/dev/null 2>&1
  podman secret rm "$SECRET" >/dev/null 2>&1
  podman volume rm -f "$VOLUME" >/dev/null 2>&1
  if [[ -f "$work/compose.env" ]]; then
    compose_cmd down -t 0 >/dev/null 2>&1
    podman network rm -f "${COMPOSE_PROJECT}_default" >/dev/null 2>&1
  fi
  [[ -n "$endpoint_pid" ]] && kill "$endpoint_pid" 2>/dev/null
  [[ -n "$gearmand_pid" ]] && kill "$gearmand_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

image_podman_env "$work"

# --- The local base images.
step "local base images (scripts/image-base.sh${rebuild_base:+ --rebuild})"
scripts/image-base.sh ${rebuild_base:+--rebuild}

# --- The image.
step "podman build --format docker --build-arg BASE_IMAGE=$IMAGE_NODE_BASE -f contrib/container/Containerfile -t $IMAGE ."
t0="$(now)"
podman build --quiet --format docker --network host --build-arg "BASE_IMAGE=$IMAGE_NODE_BASE" \
  -f contrib/container/Containerfile -t "$IMAGE" . >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2
  fail "the image did not build"
}
build_seconds="$(elapsed "$t0" "$(now)")"
image_bytes="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
base_bytes="$(podman image inspect --format '{{.Size}}' "$IMAGE_NODE_BASE")"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
pass "built in $build_seconds s: $(mib "$image_bytes"), of which the base $(mib "$base_bytes") and this Containerfile's layers $(mib "$((image_bytes - base_bytes))")"
healthcheck="$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")"
[[ "$healthcheck" == *healthcheck.js* ]] || fail "the image has no HEALTHCHECK (got $healthcheck): was it built with --format docker?"
[[ "$(podman image inspect --format '{{.Config.StopSignal}}' "$IMAGE")" == SIGTERM ]] || fail "the image's stop signal is not SIGTERM"
[[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" == driveshaft:driveshaft ]] || fail "the image does not run as driveshaft"
if podman run --rm --no-healthcheck --entrypoint sh "$IMAGE" -c 'test -e node_modules/typescript || test -e node_modules/eslint || test -d src'; then
  fail "development dependencies or sources are in the final image"
fi
pass "HEALTHCHECK on /healthz, STOPSIGNAL SIGTERM, user driveshaft, no development dependencies"

# --- gearmand and the example endpoint on this machine; the container on the host network beside them.
# Sets the variable named $1 to a free port, never one handed out before (the kernel may offer the
# same free port twice in a row).
used_ports=()
free_port() {
  local port
  while :; do
    port="$(node scripts/tcp.mjs free-port)"
    [[ " ${used_ports[*]:-} " == *" $port "* ]] || break
  done
  used_ports+=("$port")
  printf -v "$1" '%s' "$port"
}
gearmand_port='' endpoint_port='' exporter_port='' status_port='' compose_gearmand_port='' compose_exporter_port=''
free_port gearmand_port
free_port endpoint_port
free_port exporter_port
free_port status_port

step "gearmand on 127.0.0.1:$gearmand_port, the example endpoint on 127.0.0.1:$endpoint_port (requests must be signed)"
"$(command -v gearmand)" --listen 127.0.0.1 --port "$gearmand_port" --threads 0 --log-file stderr --pid-file '' \
  --config-file /dev/null >"$work/gearmand.log" 2>&1 &
gearmand_pid=$!
signing_secret="whsec_$(node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("base64"))')"
SIGNING_SECRETS="$signing_secret" PORT="$endpoint_port" HOST=127.0.0.1 node examples/endpoint.mjs >"$work/endpoint.log" 2>&1 &
endpoint_pid=$!
node scripts/tcp.mjs wait-port 127.0.0.1 "$gearmand_port" 15 || fail "gearmand did not start: $(cat "$work/gearmand.log")"
node scripts/tcp.mjs wait-port 127.0.0.1 "$endpoint_port" 15 || fail "the endpoint did not start: $(cat "$work/endpoint.log")"

# The jobs config in a folder mounted read-only: a folder, not the file, so that an edit that replaces
# the file (a new inode) reaches the container. The signing secret is a podman secret.
mkdir -m 0755 "$work/config"
write_config() {
  local regular_workers="$1"
  cat >"$work/config/jobs.json.new" <<JSON
{
  "gearman_servers_list": ["127.0.0.1:$gearmand_port"],
  "pools_list": {
    "Regular": {
      "job_processing_uri": "http://127.0.0.1:$endpoint_port/job",
      "worker_count": $regular_workers,
      "jobs_list": ["Sum", "Sum2"],
      "signing_secrets": { "file": "/run/secrets/signing.whsec" }
    },
    "Playground": {
      "job_processing_uri": "http://127.0.0.1:$endpoint_port/job",
      "worker_count": 1,
      "jobs_list": ["Sleep", "Fail"],
      "max_running_time": 30,
      "signing_secrets": { "file": "/run/secrets/signing.whsec" },
      "delivery": { "dead_letter_file": "/var/lib/driveshaft/playground.jsonl" }
    }
  }
}
JSON
  chmod 0644 "$work/config/jobs.json.new"
  mv "$work/config/jobs.json.new" "$work/config/jobs.json"
}
write_config 2
printf '%s\n' "$signing_secret" >"$work/signing.whsec"
podman secret rm "$SECRET" >/dev/null 2>&1 || true
podman secret create "$SECRET" "$work/signing.whsec" >/dev/null
rm -f "$work/signing.whsec"

# --read-only: the daemon writes nothing but its logs (stdout) and the dead letters, into a volume on
# the image's /var/lib/driveshaft (a new named volume takes that folder's owner, the image's user).
# With --read-only, podman 4.3 cannot create the mount point of a secret under the image's
# /run/secrets: a tmpfs there gives it one.
podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
run_options=(--network host --read-only --tmpfs /run/secrets:mode=0755
  -v "$work/config:/etc/driveshaft:ro" -v "$VOLUME:/var/lib/driveshaft"
  --secret "$SECRET,target=signing.whsec,uid=$IMAGE_UID,gid=$IMAGE_UID,mode=0400"
  -e "DRIVESHAFT_EXPORTER_ADDR=127.0.0.1:$exporter_port" -e "DRIVESHAFT_STATUS_PORT=$status_port")
if [[ "$pid1" == node ]]; then
  # For the comparison in docs/container.md: Node itself as PID 1, no init.
  run_options+=(--entrypoint '["node", "/usr/local/lib/driveshaft/bin/driveshaft.js"]')
fi

step "driveshaft --check in the image, with the config and the secret mounted"
podman run --rm --no-healthcheck "${run_options[@]}" "$IMAGE" --check >"$work/check.out" 2>&1 || {
  cat "$work/check.out" >&2
  fail "driveshaft --check refused the mounted config"
}
grep -q 'signing_secrets read from /run/secrets/signing.whsec' "$work/check.out" || fail "--check did not read the secret: $(cat "$work/check.out")"
# The image's user has no home: the default dead-letter files must land on the volume.
grep -q 'dead_letter_file /var/lib/driveshaft/dead-letters/Regular.jsonl (the default' "$work/check.out" \
  || fail "Regular's default dead-letter file is not under /var/lib/driveshaft/dead-letters: $(cat "$work/check.out")"
pass "config and secret accepted; default dead letters under /var/lib/driveshaft/dead-letters"

failures=()
check_failed() {
  printf '    FAILED: %s\n' "$*"
  failures+=("$*")
}
# Runs "$@" every 0.2 s until it succeeds (0) or $1 seconds pass (1).
wait_until() {
  local seconds="$1" deadline
  shift
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
gauge() { node scripts/tcp.mjs ask 127.0.0.1 "$status_port" gauges | tr -d '\r' | sed -n "s/^$1: //p"; }
gauge_is() { [[ "$(gauge "$1")" == "$2" ]]; }

step "podman run -d --name $CONTAINER ${run_options[*]} --stop-timeout 60 $IMAGE"
t_run="$(now)"
# podman logs, on a host without systemd, that it cannot schedule the healthcheck timer: the checks
# are run below with `podman healthcheck run`, as the timer would.
podman run -d --name "$CONTAINER" --stop-timeout 60 "${run_options[@]}" "$IMAGE" >/dev/null 2>"$work/run.err" || {
  cat "$work/run.err" >&2
  fail "podman run failed"
}
healthy() { podman healthcheck run "$CONTAINER"; }
wait_until 60 healthy || fail "the healthcheck did not pass within 60 s: $(podman healthcheck run "$CONTAINER" 2>&1)"
t_healthy="$(now)"
health_status="$(podman inspect --format '{{.State.Health.Status}}' "$CONTAINER" 2>/dev/null || podman inspect --format '{{.State.Healthcheck.Status}}' "$CONTAINER")"
[[ "$health_status" == healthy ]] || fail "podman inspect says the container is '$health_status', not healthy"
healthy_seconds="$(elapsed "$t_run" "$t_healthy")"
pass "healthy $healthy_seconds s after podman run (podman inspect: $health_status)"
node scripts/tcp.mjs wait-workers 127.0.0.1 "$gearmand_port" 30 Sum=2 Sum2=2 Sleep=1 Fail=1 ||
  fail "driveshaft did not register its workers with gearmand"
ready_seconds="$(elapsed "$t_run" "$(now)")"
pass "every slot registered with gearmand $ready_seconds s after podman run"

# Every process of the container: tini as PID 1 (unless --pid1 node), all of them as driveshaft.
podman top "$CONTAINER" pid user args >"$work/top.txt"
awk 'NR > 1 && $2 != "driveshaft" { bad = 1 } END { exit bad }' "$work/top.txt" || fail "a process runs as another user than driveshaft: $(cat "$work/top.txt")"
pid1_args="$(awk '$1 == 1 { $1 = ""; $2 = ""; print }' "$work/top.txt")"
pass "$(($(wc -l <"$work/top.txt") - 1)) processes, all user driveshaft; PID 1:$pid1_args"

step "jobs through it with the gearman CLI (signed with the mounted secret: the endpoint refuses unsigned requests)"
gm=(gearman -h 127.0.0.1 -p "$gearmand_port")
answer="$(timeout 30 "${gm[@]}" -f Sum -- '[1,2]')" || fail "the Sum job failed: $(tail -n 5 "$work/endpoint.log")"
[[ "$answer" == 3 ]] || fail "Sum [1,2] answered '$answer', expected 3"
answer="$(timeout 30 "${gm[@]}" -f Sum2 -- '[1,2,3]')" || fail "the Sum2 job failed"
[[ "$answer" == 14 ]] || fail "Sum2 [1,2,3] answered '$answer', expected 14"
pass "Sum [1,2] → 3, Sum2 [1,2,3] → 14"
if timeout 30 "${gm[@]}" -f Fail -- 'on purpose' >/dev/null 2>&1; then
  fail "the Fail job succeeded"
fi
dead_letter() { [[ "$(podman exec "$CONTAINER" cat /var/lib/driveshaft/playground.jsonl)" == *'"function":"Fail"'* ]]; }
wait_until 10 dead_letter || fail "the failed job is not in the dead-letter file on the volume"
pass "Fail → WORK_FAIL, its dead letter written to the volume at /var/lib/driveshaft/playground.jsonl"

step "reload by signal: Regular's worker_count 2 → 3 in the mounted config, then podman kill --signal HUP"
write_config 3
podman kill --signal HUP "$CONTAINER" >/dev/null
# Greps the container's log so far (a file first: `grep -q` on a pipe would cut podman logs short).
log_has() {
  podman logs "$CONTAINER" >"$work/log.now" 2>&1
  grep -q "$1" "$work/log.now"
}
signal_reload() { log_has '"event":"reloaded".*"trigger":"signal"'; }
if wait_until 30 signal_reload && wait_until 30 gauge_is Regular.slots 3 && node scripts/tcp.mjs wait-workers 127.0.0.1 "$gearmand_port" 30 Sum=3; then
  pass "reloaded by the signal; gauges Regular.slots: 3, gearmand lists 3 Sum workers"
else
  check_failed "HUP did not reload (trigger signal in the log: $(signal_reload && echo yes || echo no), Regular.slots: $(gauge Regular.slots))"
fi
# shellcheck disable=SC2016  # JavaScript, not shell, inside the quotes
regular_in_status="$(node -e '
  fetch(process.argv[1]).then((r) => r.json()).then((status) => {
    const pool = status.pools.find((p) => p.name === "Regular");
    process.stdout.write(`${pool.workerCount} ${pool.slots.length}`);
  });' "http://127.0.0.1:$exporter_port/status")"
if [[ "$regular_in_status" == "3 3" ]]; then
  pass "/status: Regular has workerCount 3 and 3 slots"
else
  check_failed "/status after the reload: Regular's workerCount and slots are $regular_in_status, expected 3 3"
fi

step "reaping: a pool process killed with SIGKILL, and an orphan left by podman exec"
child_pid="$(gauge Playground.child_pid)"
podman exec "$CONTAINER" sh -c "kill -KILL $child_pid"
gone() { podman exec "$CONTAINER" sh -c "test ! -e /proc/$1"; }
restarted() { local now_pid; now_pid="$(gauge Playground.child_pid)"; [[ -n "$now_pid" && "$now_pid" != 0 && "$now_pid" != "$child_pid" ]]; }
if wait_until 30 gone "$child_pid" && wait_until 30 restarted && node scripts/tcp.mjs wait-workers 127.0.0.1 "$gearmand_port" 30 Sleep=1; then
  pass "pool process $child_pid reaped and restarted as $(gauge Playground.child_pid)"
else
  check_failed "the killed pool process $child_pid was not reaped and restarted"
fi
# sh exits at once; its child `sleep 1` is then an orphan, handed by the kernel to the container's
# PID 1, which must wait() for it when it exits or it stays a zombie.
orphan="$(podman exec "$CONTAINER" sh -c 'sleep 1 >/dev/null 2>&1 & echo $!')"
if wait_until 10 gone "$orphan"; then
  pass "orphan $orphan reaped by PID 1"
else
  check_failed "orphan $orphan not reaped: $(podman exec "$CONTAINER" sh -c "grep State /proc/$orphan/status" 2>&1)"
fi

step "drain on stop: a 3 s job running when podman stop is called"
timeout 60 "${gm[@]}" -f Sleep -- 3 >"$work/slow.out" 2>&1 &
client_pid=$!
slot_busy() { node scripts/tcp.mjs ask 127.0.0.1 "$status_port" threads | grep -q 'Playground.*job_handle='; }
wait_until 15 slot_busy || fail "the Sleep job did not start"
t_stop="$(now)"
podman stop -t 60 "$CONTAINER" >/dev/null
drain_seconds="$(elapsed "$t_stop" "$(now)")"
client_status=0
wait "$client_pid" || client_status=$?
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")"
if ((client_status == 0)) && [[ "$(cat "$work/slow.out")" == "slept 3 s" ]] && [[ "$exit_code" == 0 ]]; then
  pass "podman stop took $drain_seconds s; the client got 'slept 3 s'; driveshaft exited 0"
else
  check_failed "drain: client exit status $client_status, answer '$(cat "$work/slow.out")', container exit code $exit_code, podman stop took $drain_seconds s"
fi
log_has '"component":"master".*"event":"stopped","code":0' || check_failed "no 'stopped' record with exit code 0 in the log"

step "logs: podman logs holds JSON lines only"
podman logs "$CONTAINER" >"$work/container.log" 2>&1
log_lines="$(wc -l <"$work/container.log")"
if node -e '
  const lines = require("node:fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l !== "");
  const bad = lines.filter((l) => { try { return typeof JSON.parse(l) !== "object"; } catch { return true; } });
  if (bad.length > 0 || lines.length === 0) { console.error(bad.slice(0, 3).join("\n")); process.exit(1); }
' "$work/container.log"; then
  pass "$log_lines lines, each a JSON record"
else
  check_failed "podman logs has lines that are not JSON"
fi
podman rm "$CONTAINER" >/dev/null

# --- The example compose file, with the images built here in place of the public ones.
compose_line=''
if [[ -n "$compose" ]]; then
  step "compose: contrib/container/compose.yaml under podman-compose (gearmand, the example endpoint, driveshaft)"
  podman build --quiet --network host --build-arg "BASE_IMAGE=$IMAGE_DEBIAN_BASE" -f contrib/container/gearmand.Containerfile \
    -t "$GEARMAND_IMAGE" contrib/container >"$work/gearmand-build.log" 2>&1 || {
    cat "$work/gearmand-build.log" >&2
    fail "the gearmand image did not build"
  }
  free_port compose_gearmand_port
  free_port compose_exporter_port
  cat >"$work/compose.env" <<ENV
GEARMAND_IMAGE=$GEARMAND_IMAGE
NODE_IMAGE=$IMAGE_NODE_BASE
DRIVESHAFT_IMAGE=$IMAGE
GEARMAND_PUBLISH=127.0.0.1:$compose_gearmand_port
DRIVESHAFT_EXPORTER_PUBLISH=127.0.0.1:$compose_exporter_port
ENV
  compose_cmd() {
    local -a environment
    mapfile -t environment <"$work/compose.env"
    (cd contrib/container && env "${environment[@]}" podman-compose -p "$COMPOSE_PROJECT" -f compose.yaml "$@")
  }
  t0="$(now)"
  compose_cmd up -d --no-build >"$work/compose-up.log" 2>&1 || {
    cat "$work/compose-up.log" >&2
    fail "podman-compose up failed"
  }
  compose_driveshaft="${COMPOSE_PROJECT}_driveshaft_1"
  compose_healthy() { podman healthcheck run "$compose_driveshaft"; }
  # The example config's pools: 4 Sum workers (Regular), 2 Sleep (Playground).
  if wait_until 60 compose_healthy && node scripts/tcp.mjs wait-workers 127.0.0.1 "$compose_gearmand_port" 60 Sum=4 Sleep=2; then
    compose_ready="$(elapsed "$t0" "$(now)")"
    answer="$(timeout 30 gearman -h 127.0.0.1 -p "$compose_gearmand_port" -f Sum -- '[4,5]')" || answer="(failed)"
    readyz="$(node -e 'fetch(process.argv[1]).then((r) => process.stdout.write(String(r.status)), () => process.stdout.write("no answer"))' "http://127.0.0.1:$compose_exporter_port/readyz")"
    if [[ "$answer" == 9 && "$readyz" == 200 ]]; then
      pass "up, healthy and registered in $compose_ready s; Sum [4,5] → 9 through the published gearmand port; /readyz 200 on the published exporter port"
      compose_line="compose: up to healthy and registered in $compose_ready s"
    else
      check_failed "compose: Sum [4,5] answered '$answer' (expected 9), /readyz answered $readyz (expected 200)"
    fi
  else
    podman logs --tail 20 "$compose_driveshaft" >&2 || true
    check_failed "compose: driveshaft did not go healthy and register its workers within 60 s"
  fi
  t0="$(now)"
  compose_cmd down -t 60 >"$work/compose-down.log" 2>&1 || check_failed "podman-compose down failed: $(tail -n 5 "$work/compose-down.log")"
  podman network rm -f "${COMPOSE_PROJECT}_default" >/dev/null 2>&1 || true
  rm -f "$work/compose.env"
  pass "down in $(elapsed "$t0" "$(now)") s"
fi

step "summary"
echo "image $IMAGE: $(mib "$image_bytes") ($(mib "$((image_bytes - base_bytes))") over the base $IMAGE_NODE_BASE), built in $build_seconds s"
echo "PID 1: $pid1; after podman run: healthy in $healthy_seconds s, every slot registered in $ready_seconds s"
echo "drain on podman stop with a 3 s job running: $drain_seconds s"
[[ -n "$compose_line" ]] && echo "$compose_line"
echo "whole run: $((SECONDS - started)) s"
if ((${#failures[@]} > 0)); then
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo "image test passed"

#!/usr/bin/env bash
# The demo behind `make demo`: a local gearmand, the example endpoint (examples/endpoint.mjs) and
# driveshaft with examples/jobs.json, all on free ports of 127.0.0.1; then a few jobs through the
# `gearman` CLI and the status port's answers. Everything it starts is stopped on exit, Ctrl-C included.
#
#   scripts/demo.sh               run the demo and stop   (make demo)
#   scripts/demo.sh --keep        keep everything running until Ctrl-C   (make demo-run, make demo KEEP=1)
#   --no-install                  do not run scripts/install-deps.sh first
#   --no-build                    do not run `npm run build` first (dist/ must be current)
#
# KEEP=1 (or DEMO_KEEP=1) in the environment means --keep.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

keep="${DEMO_KEEP:-${KEEP:-}}"
[[ "$keep" == 0 || "$keep" == no || "$keep" == false ]] && keep=''
install=1
build=1
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    --no-install) install='' ;;
    --no-build) build='' ;;
    -h | --help)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "demo: unknown argument $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

bold=''
dim=''
reset=''
if [[ -t 1 ]]; then
  bold=$'\e[1m'
  dim=$'\e[2m'
  reset=$'\e[0m'
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$reset"; }
die() {
  printf 'demo: %s\n' "$@" >&2
  exit 1
}

export PATH="$PATH:/usr/sbin:/sbin"
# The Node.js scripts/install-deps.sh put into .node/ when the machine's is too old, first on PATH.
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh

if [[ -n "$install" ]]; then
  step "checking dependencies (scripts/install-deps.sh)"
  scripts/install-deps.sh
  # It may just have installed .node/current: look `node` up again.
  hash -r
fi
if [[ -n "$build" ]]; then
  step "building (npm run build)"
  npm run --silent build
fi
[[ -f dist/src/main.js ]] || die "dist/src/main.js is missing: run 'npm run build' first"
for tool in gearmand gearman; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed: run scripts/install-deps.sh"
done

# --- Everything below runs in this folder and is stopped by cleanup().
tmp="$(mktemp -d "${TMPDIR:-/tmp}/driveshaft-demo.XXXXXX")"
pids=()
names=()
driveshaft_pid=''
cleaned=''

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local status=$?
  [[ -n "$cleaned" ]] && return
  cleaned=1
  trap - INT TERM
  # Stopping must go on even when a message cannot be printed (output piped into `head`, say).
  set +e
  if ((${#pids[@]} > 0)); then
    step "stopping what the demo started"
  fi
  # Newest first: driveshaft stops before its gearmand and endpoint, so its graceful stop is clean.
  local i pid waited
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[$i]}"
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    # driveshaft's graceful stop waits at most 4 x loop_timeout (8 s here) for running jobs.
    for ((waited = 0; waited < 150; waited++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "  ${names[$i]} (pid $pid) did not stop within 15 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    else
      echo "  stopped ${names[$i]} (pid $pid)"
    fi
  done
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# A closed stdout (`make demo | head`) would otherwise kill this shell by SIGPIPE without running the
# EXIT trap, leaving everything running; ignored, a failed write ends the script through `set -e`.
trap '' PIPE

# Starts "$@" in the background, in its own session so that Ctrl-C reaches only this script (which
# then stops each process in order) and not driveshaft directly: two signals would make its stop hard.
start() {
  local name="$1" log="$2"
  shift 2
  setsid "$@" >"$log" 2>&1 </dev/null &
  pids+=("$!")
  names+=("$name")
}

# Three distinct ports: the kernel may hand out the same free port twice in a row.
used_ports=()
free_port() {
  local port
  while :; do
    port="$(node scripts/tcp.mjs free-port)"
    [[ " ${used_ports[*]:-} " == *" $port "* ]] || break
  done
  used_ports+=("$port")
}
free_port
gearmand_port="${used_ports[-1]}"
free_port
endpoint_port="${used_ports[-1]}"
free_port
status_port="${used_ports[-1]}"

step "starting gearmand on 127.0.0.1:$gearmand_port"
# The C server by full path: Debian's gearman-server puts a Perl gearmand in /usr/bin, ahead on most PATHs.
gearmand_bin="$(if [[ -x /usr/sbin/gearmand ]]; then echo /usr/sbin/gearmand; else command -v gearmand; fi)"
show "gearmand --listen 127.0.0.1 --port $gearmand_port --threads 0"
# No pid file and no /etc/gearmand.conf: this instance must not touch a system gearmand's files.
start gearmand "$tmp/gearmand.log" "$gearmand_bin" --listen 127.0.0.1 --port "$gearmand_port" --threads 0 \
  --log-file stderr --pid-file '' --config-file /dev/null
node scripts/tcp.mjs wait-port 127.0.0.1 "$gearmand_port" 15 || {
  cat "$tmp/gearmand.log" >&2
  die "gearmand did not start"
}

step "starting the example endpoint on http://127.0.0.1:$endpoint_port/job"
show "PORT=$endpoint_port node examples/endpoint.mjs"
start endpoint "$tmp/endpoint.log" env PORT="$endpoint_port" HOST=127.0.0.1 node examples/endpoint.mjs
node scripts/tcp.mjs wait-port 127.0.0.1 "$endpoint_port" 15 || {
  cat "$tmp/endpoint.log" >&2
  die "the endpoint did not start"
}

# The example config names fixed ports; this run's are free-picked, so a copy gets them.
node -e '
  const fs = require("node:fs");
  const [source, target, server, uri] = process.argv.slice(1);
  const config = JSON.parse(fs.readFileSync(source, "utf8"));
  config.gearman_servers_list = [server];
  for (const pool of Object.values(config.pools_list)) pool.job_processing_uri = uri;
  fs.writeFileSync(target, JSON.stringify(config, null, 2) + "\n");
' examples/jobs.json "$tmp/jobs.json" "127.0.0.1:$gearmand_port" "http://127.0.0.1:$endpoint_port/job"
cat >"$tmp/log.json" <<EOF
{ "name": "driveshaft", "level": "debug", "streams": [{ "type": "file", "path": "$tmp/driveshaft.log" }] }
EOF

step "starting driveshaft with a copy of examples/jobs.json"
# Dead letters stay in the demo's folder too, not in /var/lib/driveshaft or ~/.local/state.
daemon_args=(--jobsconfig "$tmp/jobs.json" --logconfig "$tmp/log.json" --status_port "$status_port"
  --loop_timeout 2 --pid_file "$tmp/driveshaft.pid" --dead_letter_dir "$tmp/dead-letters")
show "node bin/driveshaft.js ${daemon_args[*]}"
start driveshaft "$tmp/driveshaft.out" node bin/driveshaft.js "${daemon_args[@]}"
driveshaft_pid="${pids[-1]}"

# Ready = gearmand lists every slot of every pool for each of its functions.
# shellcheck disable=SC2016  # JavaScript, not shell, inside the quotes
mapfile -t expected < <(node -e '
  const config = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  const counts = {};
  for (const pool of Object.values(config.pools_list))
    for (const fn of pool.jobs_list) counts[fn] = (counts[fn] ?? 0) + pool.worker_count;
  for (const [fn, n] of Object.entries(counts)) if (n > 0) console.log(`${fn}=${n}`);
' "$tmp/jobs.json")
if ! node scripts/tcp.mjs wait-workers 127.0.0.1 "$gearmand_port" 30 "${expected[@]}"; then
  echo "--- driveshaft output:" >&2
  cat "$tmp/driveshaft.out" >&2 || true
  echo "--- driveshaft log (last 20 lines):" >&2
  tail -n 20 "$tmp/driveshaft.log" >&2 || true
  die "driveshaft did not register its workers with gearmand"
fi
echo "driveshaft (pid $driveshaft_pid) registered: ${expected[*]}"

gm=(gearman -h 127.0.0.1 -p "$gearmand_port")
# Submits one foreground job and prints what the client got back. A job that fails makes gearman
# exit non-zero: reported, not fatal, since the demo shows failures on purpose.
submit() {
  local fn="$1" workload="$2" out rc=0
  show "gearman -h 127.0.0.1 -p $gearmand_port -f $fn '$workload'"
  out="$(timeout 30 "${gm[@]}" -f "$fn" -- "$workload" 2>&1)" || rc=$?
  if ((rc == 0)); then
    printf '  → %s\n' "$out"
  else
    printf '  → job failed (gearman exit status %s)%s\n' "$rc" "${out:+: $out}"
  fi
}

step "submitting jobs with the gearman CLI"
submit Sum '[1,2]'
submit Sum2 '[1,2,3]'
submit Sum3 '[1,2]'
submit ShopStats 'shop-42'
echo "  (the Newsfeed pool posts multipart/form-data, like the original Driveshaft)"
submit Newsfeed 'alice'
echo "  (Fail answers gearman_ret 1: driveshaft sends WORK_FAIL)"
submit Fail 'anything'
show "gearman -h 127.0.0.1 -p $gearmand_port -b -f Sleep 3    # background job, to see it in threads"
timeout 30 "${gm[@]}" -b -f Sleep -- 3 >/dev/null
# The status port shows the job once a slot has grabbed it.
node -e '
  const [port] = process.argv.slice(1);
  const ask = () => new Promise((resolve) => {
    const s = require("node:net").connect(Number(port), "127.0.0.1", () => s.end("threads\n"));
    let text = ""; s.on("data", (d) => (text += d)); s.on("close", () => resolve(text)); s.on("error", () => resolve(""));
  });
  (async () => { for (let i = 0; i < 50; i++) { if ((await ask()).includes("job_handle=")) return; await new Promise((r) => setTimeout(r, 100)); } })();
' "$status_port"

step "status port 127.0.0.1:$status_port"
# Prints the reply to one status command, keeping the lines that match $2 (an extended regex).
status_command() {
  local command="$1" keep_lines="$2"
  show "echo $command | nc 127.0.0.1 $status_port      # or: node scripts/tcp.mjs ask 127.0.0.1 $status_port $command"
  node scripts/tcp.mjs ask 127.0.0.1 "$status_port" "$command" | sed 's/\r$//' | { grep -E "$keep_lines" || true; } | sed 's/^/  /'
}
status_command threads '.'
echo "  (one line per slot: slot id, pool, stopping flag, state)"
status_command counters ': [1-9]'
echo "  (counters that are not 0; jobs_completed, jobs_failed, jobs_timed_out, jobs_requeued, http_errors per pool)"
status_command gauges '^(pools|children|uptime_seconds):|\.(slots|busy_slots|connected_servers):'
echo "  (a selection; gauges also has worker_count, stopping_slots, connections, child_pid, responding, failed per pool)"

step "the endpoint's log"
sed 's/^/  /' "$tmp/endpoint.log"

if [[ -z "$keep" ]]; then
  echo
  echo "Demo done. 'make demo-run' (or 'make demo KEEP=1') does the same and keeps everything running."
  exit 0
fi

cat <<EOF

${bold}Everything keeps running until you press Ctrl-C.${reset} Try, in another terminal:

  cd $root
  gearman -h 127.0.0.1 -p $gearmand_port -f Sum '[4,5,6]'
  gearman -h 127.0.0.1 -p $gearmand_port -f Sum2 '[4,5,6]'
  gearman -h 127.0.0.1 -p $gearmand_port -b -f Sleep 20          # then look at threads
  node scripts/tcp.mjs ask 127.0.0.1 $status_port threads        # or: echo threads | nc 127.0.0.1 $status_port
  node scripts/tcp.mjs ask 127.0.0.1 $status_port counters
  gearadmin -h 127.0.0.1 -p $gearmand_port --status              # gearmand's view: queued, running, workers
  tail -f $tmp/driveshaft.log | npx bunyan           # driveshaft's log, pretty-printed
  tail -f $tmp/endpoint.log

  Reload: edit $tmp/jobs.json (e.g. set Regular's worker_count to 8), then
  kill -HUP $driveshaft_pid                                   # or wait ~1 s: the file is watched too
EOF
# `wait` returns at once when a trapped signal arrives, so Ctrl-C reaches cleanup() without delay.
wait "$driveshaft_pid" || true
echo "--- driveshaft log (last 20 lines):" >&2
tail -n 20 "$tmp/driveshaft.log" >&2 || true
die "driveshaft exited by itself"

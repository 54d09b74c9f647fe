# Sourced, not run: `. scripts/node-env.sh` (bash). scripts/install-deps.sh, scripts/demo.sh and .ci/run
# source it; the Makefile sets the same PATH itself.
#
# When the machine's Node.js is older than the project needs, scripts/install-deps.sh installs one from
# the npm registry into .node/<version>/ and points .node/current at it. Putting .node/current/bin first
# on PATH makes `node`, npm itself (its `#!/usr/bin/env node` launcher), the npm scripts npm runs with
# that PATH, and bin/driveshaft.js's `#!/usr/bin/env node` all use that Node. The folder goes first even
# while .node/current does not exist yet, so that a later install-deps run takes effect at once; a PATH
# entry that does not exist is skipped by every lookup.
DRIVESHAFT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case ":$PATH:" in
  *":$DRIVESHAFT_ROOT/.node/current/bin:"*) ;;
  *) PATH="$DRIVESHAFT_ROOT/.node/current/bin:$PATH" ;;
esac
export PATH
# bash remembers where it found `node` before; forget it so the next lookup sees .node/current.
hash -r

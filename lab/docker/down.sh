#!/usr/bin/env bash
# down.sh: stop the lab and remove its containers, networks and volumes.
# The state (CA, keys) and output folders stay; up.sh starts afresh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
dct 120 down -v --remove-orphans

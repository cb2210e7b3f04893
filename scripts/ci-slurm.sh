#!/usr/bin/env bash
# ci-slurm.sh -- start/stop the throw-away one-node Slurm cluster that the real Slurm test
# (tests/test_batch_slurm.py, marker `slurm`) submits to. .ci/run calls `start` before pytest and
# `stop` at the end. It wraps ../shared/tools/slurm-ci.sh (Debian packages, needs root); Debian's
# default /etc/slurm/slurm.conf is used, so nothing needs exporting.
#
# Usage: scripts/ci-slurm.sh start|stop|status
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
recipe="$root/../shared/tools/slurm-ci.sh"
if [ ! -f "$recipe" ]; then
  echo "ci-slurm.sh: $recipe not found (expected the shared tools next to the repository)" >&2
  exit 1
fi

case "${1:-}" in
  start | stop | status) exec bash "$recipe" "$1" ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac

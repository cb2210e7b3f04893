#!/usr/bin/env bash
# ci-slurm.sh -- start/stop the throw-away one-node Slurm cluster that the real Slurm test
# (tests/test_batch_slurm.py, marker `slurm`) submits to. .ci/run calls `start` before pytest and
# `stop` at the end. It wraps ../shared/tools/slurm-ci.sh (Debian packages, needs root); Debian's
# default /etc/slurm/slurm.conf is used, so nothing needs exporting.
#
# Usage: scripts/ci-slurm.sh start|stop|status
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
# The shared tools sit next to the repository (../shared); a clone elsewhere finds them in /work/shared,
# or wherever SLURM_CI_RECIPE points.
recipe=""
for candidate in "${SLURM_CI_RECIPE:-}" "$root/../shared/tools/slurm-ci.sh" /work/shared/tools/slurm-ci.sh; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then recipe=$candidate; break; fi
done
if [ -z "$recipe" ]; then
  echo "ci-slurm.sh: slurm-ci.sh not found in ../shared/tools or /work/shared/tools; set SLURM_CI_RECIPE" >&2
  exit 1
fi

case "${1:-}" in
  start | stop | status) exec bash "$recipe" "$1" ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac

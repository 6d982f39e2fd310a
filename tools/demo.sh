#!/bin/bash
# Set everything up (tools/bootstrap.sh), then run the demo on the
# all-in-one cluster: "cloud-shunt demo" with this script's arguments
# (e.g. --check).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/python-env.sh"
bash "$REPO/tools/bootstrap.sh"
PY=$(project_python)
exec "$PY" -m shunt.tools.cli demo "$@"

#!/bin/bash
# Set everything up (tools/bootstrap.sh), then lint and run every test
# (tools/run-tests.sh, which takes extra pytest arguments).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/python-env.sh"
bash "$REPO/tools/bootstrap.sh"
exec bash "$REPO/tools/run-tests.sh" "$@"

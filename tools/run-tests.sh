#!/bin/bash
# Lint, unit tests and functional tests in the project's Python
# environment (tools/python-env.sh; tools/test.sh runs tools/bootstrap.sh
# first). Every stage runs; the exit status is
# non-zero if any of them failed. Extra arguments go to both pytest runs.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/python-env.sh"
cd "$REPO"
PYTHON=$(project_python)
export PYTHONDONTWRITEBYTECODE=1

failed=()
stage() {
    local name=$1
    shift
    echo "=== ${name}: $*"
    local start=$SECONDS
    if "$@"; then
        echo "=== ${name}: passed ($((SECONDS - start))s)"
    else
        echo "=== ${name}: FAILED ($((SECONDS - start))s)"
        failed+=("$name")
    fi
}

stage lint "$PYTHON" -m ruff check .
stage unit "$PYTHON" -m pytest -p no:cacheprovider tests/unit "$@"
stage functional "$PYTHON" -m pytest -p no:cacheprovider tests/functional "$@"

if [ ${#failed[@]} -gt 0 ]; then
    echo "=== FAILED: ${failed[*]}"
    exit 1
fi
echo "=== all passed"

# Sourced by the tools/*.sh scripts: which Python the project runs in.
#
#   1. $PYTHON, when the user names one;
#   2. the active virtualenv ($VIRTUAL_ENV);
#   3. otherwise the project's own virtualenv, .venv/ in the checkout
#      (tools/bootstrap.sh creates it). Distribution Pythons are
#      "externally managed" (PEP 668) and must not be installed into.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV_DIR="$REPO/.venv"

project_python() {
    if [ -n "${PYTHON:-}" ]; then
        echo "$PYTHON"
    elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
        echo "$VIRTUAL_ENV/bin/python"
    else
        echo "$VENV_DIR/bin/python"
    fi
}

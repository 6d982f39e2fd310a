#!/bin/bash
# Install what the demo and the tests need: system packages (memcached,
# python3-venv; see bindep.txt) and this project in editable mode with its
# test extras. Safe to run again: it only does what is missing.
#
# Where the project is installed (tools/python-env.sh): into $PYTHON when
# set, else into the active virtualenv, else into the project's own
# virtualenv .venv/ (created here with "python3 -m venv" from the first
# python3 on PATH, or $BASE_PYTHON). The distribution's Python itself is
# never installed into (PEP 668; no --break-system-packages).
#
# CLOUD_SHUNT_BENCH=1 also installs what the benchmarks need (tests/bench):
# wrk (apt) and the "bench" extras (matplotlib, py-spy). The tests never
# need them.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/python-env.sh"
cd "$REPO"

say() { echo "bootstrap: $*"; }

SUDO=()
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "please install: $* (see bindep.txt)" >&2
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            say "need root (or sudo) to install: $*" >&2
            exit 1
        fi
        SUDO=(sudo)
        [ -t 0 ] || SUDO+=(-n)
    fi
    say "installing $* (apt)"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null
}

# -- system packages (Debian/Ubuntu) -------------------------------------
BENCH=${CLOUD_SHUNT_BENCH:-0}
missing=()
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] \
    || missing+=(memcached)
if [ "$BENCH" = 1 ]; then
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
fi
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# -- the Python environment ------------------------------------------------
PY=$(project_python)
if [ "$PY" = "$VENV_DIR/bin/python" ] && ! "$PY" -c '' 2>/dev/null; then
    BASE=${BASE_PYTHON:-$(command -v python3 || true)}
    if [ -z "$BASE" ]; then
        apt_install python3 python3-venv
        BASE=$(command -v python3)
    fi
    # Debian/Ubuntu ship venv without ensurepip unless python3-venv is in
    if ! "$BASE" -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3-venv
    fi
    if [ -e "$VENV_DIR" ] && [ ! -d "$VENV_DIR" ]; then
        say "$VENV_DIR exists and is not a directory; move it away" >&2
        exit 1
    fi
    say "creating the virtualenv $VENV_DIR ($("$BASE" --version 2>&1))"
    rm -rf "$VENV_DIR"
    "$BASE" -m venv "$VENV_DIR"
fi

pip_install() {
    # a wheel missing for this platform means compiling: then (and only
    # then) install a compiler and the Python headers, and try again
    if ! "$PY" -m pip install -q --disable-pip-version-check "$@"; then
        if command -v gcc >/dev/null 2>&1 && \
                "$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
            return 1
        fi
        apt_install gcc python3-dev
        "$PY" -m pip install -q --disable-pip-version-check "$@"
    fi
}

# -- the project -----------------------------------------------------------
# Reinstall only when the editable install of this checkout is missing,
# setup.py changed since, or a requirement is not satisfied.
if "$PY" - "$REPO" <<'PY'
import importlib.metadata as md
import os
import sys

repo = sys.argv[1]
# look at what is installed, not at the checkout's own egg-info
sys.path[:] = [p for p in sys.path
               if p not in ('', '.', repo) and os.path.abspath(p) != repo]
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
try:
    dist = md.distribution('swift-cloud-shunt')
    import shunt
except (md.PackageNotFoundError, ImportError):
    sys.exit(1)
if os.path.dirname(os.path.dirname(os.path.abspath(shunt.__file__))) \
        != repo:
    sys.exit(1)
meta = [os.path.join(str(getattr(dist, '_path', '')), name)
        for name in ('METADATA', 'PKG-INFO')]
installed = max([os.path.getmtime(m) for m in meta if os.path.exists(m)],
                default=0)
if os.path.getmtime(os.path.join(repo, 'setup.py')) > installed:
    sys.exit(1)
for line in dist.requires or ():
    req = Requirement(line)
    if req.marker and not req.marker.evaluate({'extra': 'test'}):
        continue
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if req.specifier and not req.specifier.contains(version,
                                                    prereleases=True):
        sys.exit(1)
sys.exit(0)
PY
then
    say "swift-cloud-shunt already installed (editable) with test extras"
else
    say "pip install -e '.[test]' into $("$PY" -c 'import sys; print(sys.prefix)')"
    pip_install -e '.[test]'
fi
if [ "$BENCH" = 1 ]; then
    if "$PY" -c 'import matplotlib' 2>/dev/null \
            && [ -x "$(dirname "$PY")/py-spy" ]; then
        say "bench extras already installed"
    else
        say "pip install -e '.[test,bench]'"
        pip_install -e '.[test,bench]'
    fi
fi
say "ready: $PY"
